//! `GET /health`: answers without touching KV, so it says the Worker runs, not that KV does.

use crate::error::AppError;
use crate::http::ApiResponse;

/// `{"status": "ok"}`.
pub fn get() -> Result<ApiResponse, AppError> {
    Ok(ApiResponse::json(200, r#"{"status":"ok"}"#.into()))
}
