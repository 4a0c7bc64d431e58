//! Crossing the wasm boundary: errors to JavaScript `Error`s with a `code`, Rust values to
//! plain JavaScript objects and back, and the edge's clock and entropy.

use js_sys::{Array, Object, Reflect};
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

use crate::{client::OptionSource, error::Error};

/// Milliseconds since the Unix epoch, from JavaScript's clock.
pub(crate) fn now() -> u64 {
    js_sys::Date::now().max(0.0) as u64
}

/// A seed from the platform's entropy (`crypto.getRandomValues` in wasm).
pub(crate) fn entropy() -> u64 {
    getrandom::u64().unwrap_or_else(|_| js_sys::Date::now().to_bits())
}

/// Sets `object[key] = value`, ignoring failure (only frozen objects refuse).
pub(crate) fn set(object: &JsValue, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

/// `object[key]`, or `undefined`.
pub(crate) fn get(object: &JsValue, key: &str) -> JsValue {
    if !object.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// An optional number option; `undefined` and `null` are absent.
pub(crate) fn opt_number(object: &JsValue, key: &'static str) -> Result<Option<f64>, Error> {
    let value = get(object, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_f64()
        .filter(|n| !n.is_nan())
        .map(Some)
        .ok_or_else(|| Error::argument(key, "must be a number"))
}

/// An optional string option; `undefined` and `null` are absent.
pub(crate) fn opt_string(object: &JsValue, key: &'static str) -> Result<Option<String>, Error> {
    let value = get(object, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| Error::argument(key, "must be a string"))
}

/// `connect(options)` read from the JavaScript object itself, so that `Infinity` stays a number.
impl OptionSource for JsValue {
    fn keys(&self) -> Vec<String> {
        self.dyn_ref::<Object>()
            .map(|object| {
                Object::keys(object)
                    .iter()
                    .filter_map(|k| k.as_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn child(&self, key: &'static str) -> Self {
        get(self, key)
    }

    fn number(&self, key: &'static str) -> Result<Option<f64>, Error> {
        opt_number(self, key)
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, Error> {
        opt_string(self, key)
    }

    fn boolean(&self, key: &'static str) -> Result<Option<bool>, Error> {
        let value = get(self, key);
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        value
            .as_bool()
            .map(Some)
            .ok_or_else(|| Error::argument(key, "must be a boolean"))
    }

    fn json(&self, key: &'static str) -> Result<serde_json::Value, Error> {
        from_js(get(self, key), key)
    }
}

/// The JavaScript `Error` for `error`: `message` as the Rust `Display`, `name` `VascoError`, a
/// stable `code`, and what else helps: `missing` (names), `status` (HTTP), `registryCode`
/// (the registry's own code behind an `unavailable`), `field`, `reason`.
pub(crate) fn js_error(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("VascoError");
    let value: JsValue = js.into();
    set(&value, "code", error.code());
    match error {
        Error::NoUrl { missing, .. } => {
            set(&value, "missing", strings(missing));
        }
        Error::Registry { status, .. } => set(&value, "status", *status),
        Error::Unavailable {
            status,
            registry_code,
            ..
        } => {
            if let Some(status) = status {
                set(&value, "status", *status);
            }
            if let Some(code) = registry_code {
                set(&value, "registryCode", code.as_str());
            }
        }
        Error::Core(vasco_core::Error::Invalid { field, .. }) => set(&value, "field", *field),
        Error::Argument { name, .. } => set(&value, "field", *name),
        Error::InvalidPackage { reason } => set(&value, "reason", reason.as_str()),
        _ => {}
    }
    value
}

/// The error of the functions wasm exports: any of the crate's errors, or a core one, becomes
/// a JavaScript error ([`js_error`]) through `?`, in this one conversion.
#[derive(Debug)]
pub struct JsErr(JsValue);

impl From<Error> for JsErr {
    fn from(error: Error) -> Self {
        JsErr(js_error(&error))
    }
}

impl From<vasco_core::Error> for JsErr {
    fn from(error: vasco_core::Error) -> Self {
        JsErr(core_error(error))
    }
}

impl From<JsValue> for JsErr {
    fn from(value: JsValue) -> Self {
        JsErr(value)
    }
}

impl From<JsErr> for JsValue {
    fn from(error: JsErr) -> Self {
        error.0
    }
}

/// Shorthand: a JavaScript error for a core error.
pub(crate) fn core_error(error: vasco_core::Error) -> JsValue {
    js_error(&Error::Core(error))
}

/// A JavaScript array of strings.
pub(crate) fn strings(items: &[String]) -> Array {
    items.iter().map(|s| JsValue::from_str(s)).collect()
}

/// Any serializable value as a plain JavaScript value (maps become objects).
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

/// A plain JavaScript value as JSON data (functions and symbols are refused).
pub(crate) fn from_js(value: JsValue, name: &'static str) -> Result<serde_json::Value, Error> {
    if value.is_undefined() {
        return Ok(serde_json::Value::Null);
    }
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| Error::argument(name, format!("is not plain JSON data: {e}")))
}

/// The frozen JavaScript objects for a list of instances: built once per fetched answer and
/// handed out by every pick, so they must not be changed by callers.
pub(crate) fn frozen_instances(instances: &[vasco_core::Instance]) -> Array {
    instances
        .iter()
        .map(|instance| {
            let object = to_js(instance);
            if let Some(object) = object.dyn_ref::<Object>() {
                Object::freeze(object);
            }
            object
        })
        .collect()
}
