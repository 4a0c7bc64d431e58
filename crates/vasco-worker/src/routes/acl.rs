//! `/v1/acl/tokens`: creating, listing and revoking scoped tokens ([`vasco_core::acl`]),
//! kept by the token object ([`crate::tokens`]). Only a token that may manage (the bootstrap
//! `VASCO_TOKEN`, or a scoped token with `manage`) reaches these routes.

use serde::Serialize;
use vasco_core::acl::{TokenRecord, TokenRequest};

use super::json;
use crate::backend::{Backend, Objects};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse};
use crate::kv::Kv;
use crate::router::Params;
use crate::tokens::TokenCommand;

/// The answer to a creation: the record and, this once, the token's text.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The token's id.
    pub id: String,
    /// The token to send (`vt.<id>.<secret>`): shown here only, never again.
    pub secret: String,
    /// The stored record (without the secret's hash).
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// 32 random bytes from the platform's secure source.
fn random_bytes() -> Result<[u8; 32], AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal {
        reason: format!("no secure random source: {e}"),
    })?;
    Ok(bytes)
}

/// `POST /v1/acl/tokens` with `{"description", "policies", "expires_at"}`: 201 with the
/// token's id and secret.
pub async fn create<K: Kv, O: Objects>(
    req: &ApiRequest,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let body = core::str::from_utf8(&req.body)
        .map_err(|_| AppError::invalid("body", "is not UTF-8 text"))?;
    let request = TokenRequest::from_json(body, backend.now)?;
    let (record, secret) = TokenRecord::issue(request, random_bytes()?, backend.now);
    let id = record.id.clone();
    let stored = backend
        .objects
        .tokens(&TokenCommand::Create { record })
        .await?
        .record
        .ok_or_else(|| AppError::Internal {
            reason: "the token object did not answer the new token".into(),
        })?;
    json(
        201,
        &Created {
            id,
            secret,
            record: stored,
        },
    )
}

/// The answer of a listing: `{"tokens": [...]}`.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// Every token, without secrets or their hashes.
    pub tokens: Vec<TokenRecord>,
}

/// `GET /v1/acl/tokens`.
pub async fn list<K: Kv, O: Objects>(backend: &Backend<'_, K, O>) -> Result<ApiResponse, AppError> {
    let records = backend.objects.tokens(&TokenCommand::List).await?.records;
    json(200, &Listed { tokens: records })
}

/// `DELETE /v1/acl/tokens/{id}`: 204, or 404 for an unknown id.
pub async fn revoke<K: Kv, O: Objects>(
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let id = params.get("id");
    backend
        .objects
        .tokens(&TokenCommand::Delete { id: id.into() })
        .await?
        .record
        .ok_or_else(|| AppError::UnknownId {
            what: "token",
            id: id.into(),
        })?;
    Ok(ApiResponse::no_content())
}
