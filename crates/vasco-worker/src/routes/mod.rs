//! The handlers, one file per resource. Each parses its input into core types, asks
//! `vasco-core` for every decision, reaches the registry through [`crate::backend::Backend`] and
//! answers.

pub mod consul;
pub mod health;
pub mod lyft;
pub mod openapi;
pub mod resolve;
pub mod services;

use serde::Serialize;
use serde_json::Value;

use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse};

/// A JSON response with `status`.
pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Result<ApiResponse, AppError> {
    let body = serde_json::to_string(value).map_err(|e| AppError::Internal {
        reason: format!("response not serializable: {e}"),
    })?;
    Ok(ApiResponse::json(status, body))
}

/// The request body parsed as a JSON object. An empty body, text that is not JSON, or JSON
/// that is not an object is a 400.
pub fn body_object(req: &ApiRequest) -> Result<Value, AppError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::invalid(
            "body",
            "is empty; send a JSON object (Content-Type: application/json)",
        ));
    }
    let value: Value = serde_json::from_slice(&req.body).map_err(|e| AppError::BadJson {
        reason: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(AppError::invalid("body", "must be a JSON object"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn req(body: &str) -> ApiRequest {
        ApiRequest::new(Method::Post, "/").with_body(body)
    }

    #[test]
    fn body_must_be_a_json_object() {
        assert_eq!(body_object(&req("")).unwrap_err().code(), "invalid_body");
        assert_eq!(
            body_object(&req("  \n")).unwrap_err().code(),
            "invalid_body"
        );
        assert_eq!(body_object(&req("{")).unwrap_err().code(), "bad_json");
        assert_eq!(body_object(&req("nope")).unwrap_err().code(), "bad_json");
        assert_eq!(body_object(&req("[1]")).unwrap_err().code(), "invalid_body");
        assert!(body_object(&req(r#"{"a":1}"#)).is_ok());
        let not_utf8 = ApiRequest::new(Method::Post, "/").with_body(vec![b'"', 0xff, b'"']);
        assert_eq!(body_object(&not_utf8).unwrap_err().code(), "bad_json");
    }
}
