//! Edits that turn a whole list into a new one while touching as little of the file as possible.

use serde_json::{Map, Value};

use super::{Edit, EditError, Seg, value_at};
use crate::{ApiKeyEntry, OpenAiCompatibility};

/// Edits turning the list at top-level `key` into `new`. Items are compared by position; in
/// mapping items only the fields that differ are written: a field counts as unchanged when its
/// new value equals the file's or what the typed config shows for it (`GET /config`, which a
/// panel echoes back, defaults included). Fields missing from `new` are removed. New items and
/// new nested values are written without fields at their default.
pub fn list_edits(text: &str, key: &str, new: &[Value]) -> Result<Vec<Edit>, EditError> {
    let list = vec![Seg::key(key)];
    let blank = blank_item(key);
    let written = |item: &Value| prune(item, blank.as_ref());
    let old = match value_at(text, &list)? {
        Some(Value::Array(items)) if !items.is_empty() && !new.is_empty() => items,
        _ => return Ok(vec![Edit::Set(list, Value::Array(new.iter().map(written).collect()))]),
    };
    let shown: Vec<Value> = crate::parse(text)
        .ok()
        .and_then(|loaded| serde_json::to_value(loaded.config).ok())
        .and_then(|config| config.get(key).and_then(Value::as_array).cloned())
        .unwrap_or_default();
    let mut edits = Vec::new();
    for (index, (old_item, new_item)) in old.iter().zip(new).enumerate() {
        let at = |field: Option<&str>| {
            let mut path = vec![Seg::key(key), Seg::Index(index)];
            path.extend(field.map(Seg::key));
            path
        };
        let (Value::Object(old_fields), Value::Object(new_fields)) = (old_item, new_item) else {
            if old_item != new_item && shown.get(index) != Some(new_item) {
                edits.push(Edit::Set(at(None), written(new_item)));
            }
            continue;
        };
        let shown_fields = shown.get(index).and_then(Value::as_object);
        for (field, value) in new_fields {
            let shown_value = shown_fields.and_then(|s| s.get(field));
            let unchanged = match old_fields.get(field) {
                Some(current) => current == value || shown_value == Some(value),
                None => shown_value.map_or_else(|| is_blank(value), |shown| shown == value),
            };
            if !unchanged {
                edits.push(Edit::Set(at(Some(field)), prune(value, None)));
            }
        }
        for field in old_fields.keys().filter(|f| !new_fields.contains_key(*f)) {
            edits.push(Edit::Delete(at(Some(field))));
        }
    }
    for index in (new.len()..old.len()).rev() {
        edits.push(Edit::Delete(vec![Seg::key(key), Seg::Index(index)]));
    }
    for (index, item) in new.iter().enumerate().skip(old.len()) {
        edits.push(Edit::Set(vec![Seg::key(key), Seg::Index(index)], written(item)));
    }
    Ok(edits)
}

/// An entry of the list at `key` with every field at its default.
fn blank_item(key: &str) -> Option<Value> {
    match key {
        "openai-compatibility" => serde_json::to_value(OpenAiCompatibility::default()).ok(),
        _ if key.ends_with("-api-key") => serde_json::to_value(ApiKeyEntry::default()).ok(),
        _ => None,
    }
}

/// `null`, `""`, `[]`, `{}`: what a field nobody set looks like.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// `value` without blank fields (at any depth) and, at the top, without fields equal to the
/// `blank` entry's.
fn prune(value: &Value, blank: Option<&Value>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !is_blank(v) && blank.and_then(|b| b.get(k.as_str())) != Some(*v))
                .map(|(k, v)| (k.clone(), prune(v, None)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| prune(item, None)).collect()),
        other => other.clone(),
    }
}
