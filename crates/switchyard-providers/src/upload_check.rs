//! Uploaded auth files checked against the registry: an object whose `type` names a provider
//! (or can be derived as CPA does: Kiro's `auth_method`, else the `{type}-...json` file-name
//! prefix) and that holds what that provider's [`Provider::required_fields`] say it needs.

use serde_json::{Map, Value};
use switchyard_auth::Credential;

use crate::vertex::service_account::json_kind;
use crate::{Provider, Registry, RequiredField, required};

/// Why an upload is not a usable auth file. `field` is the key at fault; `valid_types` lists
/// every `type` this configuration knows (for errors about the type).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UploadProblem {
    pub message: String,
    pub field: String,
    pub valid_types: Vec<String>,
}

/// Who owns an upload's type: a built-in provider, or a config-declared one.
enum Owner {
    Builtin(&'static dyn Provider),
    Custom(String),
}

impl Owner {
    fn id(&self) -> &str {
        match self {
            Owner::Builtin(provider) => provider.id(),
            Owner::Custom(name) => name,
        }
    }

    fn required_fields(&self) -> &'static [RequiredField] {
        match self {
            Owner::Builtin(provider) => provider.required_fields(),
            // Config-declared OAuth providers use the token as a key, or refresh it.
            Owner::Custom(_) => &[required::ANY_TOKEN],
        }
    }
}

impl Registry {
    /// Every auth-file `type` this configuration knows, sorted.
    pub fn file_types(&self) -> Vec<String> {
        let mut types: Vec<String> =
            crate::all().iter().flat_map(|p| p.file_types()).map(|t| (*t).to_owned()).collect();
        types.extend(self.custom_names().map(str::to_ascii_lowercase));
        types.sort();
        types.dedup();
        types
    }

    /// Checks an uploaded auth file named `file_name`. `Ok(Some(type))` when the file has no
    /// `type` and it was derived: the caller writes it into the file so the account is usable;
    /// `Ok(None)` when the file's own `type` is fine.
    pub fn check_upload(
        &self,
        file_name: &str,
        document: &Map<String, Value>,
    ) -> Result<Option<String>, UploadProblem> {
        let valid_types = self.file_types();
        let problem = |field: &str, message: String| UploadProblem {
            message,
            field: field.to_owned(),
            valid_types: valid_types.clone(),
        };
        let (owner, derived) = match document.get("type") {
            Some(Value::String(file_type)) if !file_type.trim().is_empty() => {
                let owner = self.owner(file_type.trim()).ok_or_else(|| {
                    problem(
                        "type",
                        format!("unknown type `{}`; valid types: {}", file_type.trim(), valid_types.join(", ")),
                    )
                })?;
                (owner, None)
            }
            Some(Value::String(_)) | None => match self.derive_type(file_name, document) {
                Some((owner, derived)) => (owner, Some(derived)),
                None => {
                    return Err(problem(
                        "type",
                        format!(
                            "missing field `type` (and the file name does not start with `<type>-`); valid types: {}",
                            valid_types.join(", ")
                        ),
                    ));
                }
            },
            Some(other) => {
                return Err(problem(
                    "type",
                    format!(
                        "field `type` must be a string, not {}; valid types: {}",
                        json_kind(other),
                        valid_types.join(", ")
                    ),
                ));
            }
        };
        let mut fields = document.clone();
        if let Some(derived) = &derived {
            fields.insert("type".into(), Value::String(derived.clone()));
        }
        // Shape errors (weight, disabled, ...) are reported by the store's own check later.
        let Ok(credential) = Credential::from_map(fields) else { return Ok(derived) };
        if let Some(missing) = owner.required_fields().iter().find(|f| !(f.present)(&credential)) {
            return Err(problem(
                missing.name,
                format!("missing field `{}`: a {} auth file needs it to be usable", missing.name, owner.id()),
            ));
        }
        Ok(derived)
    }

    fn owner(&self, file_type: &str) -> Option<Owner> {
        if let Some(builtin) = crate::for_file_type(file_type).or_else(|| crate::by_id(&file_type.to_ascii_lowercase()))
        {
            return Some(Owner::Builtin(builtin));
        }
        self.custom_names().find(|name| name.eq_ignore_ascii_case(file_type)).map(|name| Owner::Custom(name.to_owned()))
    }

    /// A type for a file without one: what [`Credential::provider`] reads from other keys
    /// (Kiro's `auth_method`), else the longest known type the file name starts with, followed
    /// by `-` (`github-copilot-x.json` is `github-copilot`, not a `github` type).
    fn derive_type(&self, file_name: &str, document: &Map<String, Value>) -> Option<(Owner, String)> {
        if let Ok(credential) = Credential::from_map(document.clone())
            && let Some(provider) = credential.provider()
            && let Some(owner) = self.owner(&provider)
        {
            return Some((owner, provider));
        }
        let name = file_name.to_ascii_lowercase();
        let file_type =
            self.file_types().into_iter().filter(|t| name.starts_with(&format!("{t}-"))).max_by_key(String::len)?;
        Some((self.owner(&file_type)?, file_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::new(&switchyard_config::parse("port: 8317\n").expect("test config parses").config)
    }

    fn check(name: &str, value: Value) -> Result<Option<String>, UploadProblem> {
        registry().check_upload(name, value.as_object().unwrap())
    }

    #[test]
    fn every_provider_lists_at_least_one_requirement_with_a_name() {
        for provider in crate::all() {
            assert!(!provider.required_fields().is_empty(), "{}", provider.id());
            assert!(provider.required_fields().iter().all(|f| !f.name.is_empty()), "{}", provider.id());
        }
    }

    #[test]
    fn types_are_checked_and_derived() {
        assert_eq!(check("x.json", json!({"type": "claude", "access_token": "t"})), Ok(None));
        assert_eq!(check("x.json", json!({"type": "Gemini", "token": {"refresh_token": "r"}})), Ok(None));
        let err = check("x.json", json!({"access_token": "t"})).unwrap_err();
        assert_eq!(err.field, "type");
        assert!(err.message.starts_with("missing field `type`"), "{}", err.message);
        assert!(err.valid_types.contains(&"claude".to_owned()));
        let err = check("x.json", json!({"type": 7, "access_token": "t"})).unwrap_err();
        assert!(err.message.starts_with("field `type` must be a string, not a number"), "{}", err.message);
        let err = check("x.json", json!({"type": "nope", "access_token": "t"})).unwrap_err();
        assert!(err.message.starts_with("unknown type `nope`; valid types: "), "{}", err.message);
        assert_eq!(check("github-copilot-me.json", json!({"access_token": "t"})), Ok(Some("github-copilot".into())));
        assert_eq!(check("kimi-1.json", json!({"refresh_token": "r"})), Ok(Some("kimi".into())));
        assert_eq!(check("x.json", json!({"auth_method": "social", "refresh_token": "r"})), Ok(Some("kiro".into())));
    }

    #[test]
    fn missing_requirements_are_named() {
        let err = check("x.json", json!({"type": "claude", "email": "a@b"})).unwrap_err();
        assert_eq!(err.field, "access_token or refresh_token");
        assert_eq!(
            err.message,
            "missing field `access_token or refresh_token`: a claude auth file needs it to be usable"
        );
        let err = check("x.json", json!({"type": "vertex", "service_account": {"client_email": "e"}})).unwrap_err();
        assert!(err.field.starts_with("service_account"), "{}", err.field);
        let err = check("x.json", json!({"type": "github-copilot", "refresh_token": "r"})).unwrap_err();
        assert_eq!(err.field, "access_token");
        assert_eq!(check("x.json", json!({"type": "iflow", "cookie": "BXAuth=1"})), Ok(None));
    }
}
