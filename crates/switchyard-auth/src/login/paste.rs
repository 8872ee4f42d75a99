//! Reading an OAuth callback the user pasted (the redirect URL from the browser's address bar,
//! or part of it) — spec §0.5.

use url::Url;

/// The parameters of one OAuth callback. Blank values count as absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The `error` parameter, else `error_description`.
    pub error: Option<String>,
}

/// Shows which parameters are present, never their values (codes and states are secrets).
impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_deref().map(switchyard_redact::secret))
            .field("state", &self.state.as_deref().map(switchyard_redact::secret))
            .field("error", &self.error)
            .finish()
    }
}

impl CallbackParams {
    /// Reads `code`, `state`, `error` and `error_description` from URL-encoded `key=value`
    /// pairs (a query string); the first non-blank value of each wins.
    pub fn from_query(query: &str) -> CallbackParams {
        let mut raw = RawParams::default();
        raw.fill_from(query);
        raw.finish()
    }
}

/// Why pasted text is not a usable callback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    #[error("no callback URL given")]
    Empty,
    #[error("invalid callback URL")]
    Invalid,
    #[error("callback URL missing code")]
    MissingCode,
}

/// Parses what the user pasted after logging in: a full callback URL, `host[:port]/path?...`
/// without a scheme, just `?query`, or a bare `code=...&state=...`. Values come from the query
/// first, then from the `#fragment` for any still missing. A code of the form `code#state`
/// (Claude's console shows one) supplies the state when none was given. Succeeds when there is
/// a code or an error.
pub fn parse_callback_input(input: &str) -> Result<CallbackParams, PasteError> {
    let params = parse_callback_fields(input)?;
    if params.code.is_none() && params.error.is_none() {
        return Err(PasteError::MissingCode);
    }
    Ok(params)
}

/// [`parse_callback_input`] without requiring a code or an error, for callers that validate the
/// fields themselves (the management API answers "state is required" before "code or error is
/// required", as CPA does).
pub fn parse_callback_fields(input: &str) -> Result<CallbackParams, PasteError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(PasteError::Empty);
    }
    let mut raw = RawParams::default();
    if let Some(query) = input.strip_prefix('?') {
        let (query, fragment) = split_fragment(query);
        raw.fill_from(query);
        raw.fill_from(fragment.unwrap_or(""));
    } else if is_bare_query(input) {
        // Bare pairs have no fragment: a `#` here belongs to a `code#state` value.
        raw.fill_from(input);
    } else {
        let candidate = if input.contains("://") { input.to_owned() } else { format!("http://{input}") };
        let url = Url::parse(&candidate).map_err(|_| PasteError::Invalid)?;
        raw.fill_from(url.query().unwrap_or(""));
        raw.fill_from(url.fragment().unwrap_or(""));
    }
    Ok(raw.finish())
}

/// `key=value...` with a plain first key: no scheme, host or path in front of the first `=`
/// (so `code=4/0Ab...` with a slash in the value still counts).
fn is_bare_query(input: &str) -> bool {
    input.split_once('=').is_some_and(|(key, _)| !key.is_empty() && !key.contains(['/', '?', '#', ':']))
}

fn split_fragment(text: &str) -> (&str, Option<&str>) {
    match text.split_once('#') {
        Some((before, after)) => (before, Some(after)),
        None => (text, None),
    }
}

#[derive(Default)]
struct RawParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl RawParams {
    /// Takes each known key from `pairs` unless it is already set.
    fn fill_from(&mut self, pairs: &str) {
        for (key, value) in url::form_urlencoded::parse(pairs.as_bytes()) {
            let slot = match key.as_ref() {
                "code" => &mut self.code,
                "state" => &mut self.state,
                "error" => &mut self.error,
                "error_description" => &mut self.error_description,
                _ => continue,
            };
            let value = value.trim();
            if slot.is_none() && !value.is_empty() {
                *slot = Some(value.to_owned());
            }
        }
    }

    fn finish(self) -> CallbackParams {
        let RawParams { mut code, mut state, error, error_description } = self;
        // CPA splits `code#state` only when no state was given; otherwise the code is passed on
        // unchanged and the provider decides what a `#` in it means.
        if state.is_none()
            && let Some((head, tail)) = code.as_deref().and_then(|c| c.split_once('#'))
        {
            let (head, tail) = (head.trim().to_owned(), tail.trim().to_owned());
            state = Some(tail).filter(|s| !s.is_empty());
            code = Some(head).filter(|c| !c.is_empty());
        }
        CallbackParams { code, state, error: error.or(error_description) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(code: Option<&str>, state: Option<&str>, error: Option<&str>) -> CallbackParams {
        CallbackParams {
            code: code.map(str::to_owned),
            state: state.map(str::to_owned),
            error: error.map(str::to_owned),
        }
    }

    fn ok(input: &str) -> CallbackParams {
        parse_callback_input(input).unwrap_or_else(|err| panic!("{input:?}: {err}"))
    }

    #[test]
    fn accepts_every_documented_shape() {
        let want = params(Some("abc"), Some("xyz"), None);
        for input in [
            "http://localhost:54545/callback?code=abc&state=xyz",
            "https://console.example.com/oauth/code/callback?code=abc&state=xyz",
            "localhost:1455/auth/callback?code=abc&state=xyz",
            "localhost/callback?state=xyz&code=abc",
            "?code=abc&state=xyz",
            "code=abc&state=xyz",
            "  code=abc&state=xyz\n",
            "http://localhost:8085/oauth2callback?scope=email&code=abc&state=xyz&authuser=0",
        ] {
            assert_eq!(ok(input), want, "{input:?}");
        }
    }

    #[test]
    fn decodes_values_and_keeps_slashes_in_bare_codes() {
        assert_eq!(ok("code=4/0AbC%2Bd&state=s1"), params(Some("4/0AbC+d"), Some("s1"), None));
        assert_eq!(ok("http://h/cb?code=4%2F0Ab&state=s1"), params(Some("4/0Ab"), Some("s1"), None));
        assert_eq!(ok("?code=a+b&state=s"), params(Some("a b"), Some("s"), None));
    }

    #[test]
    fn fragment_fills_only_what_the_query_lacks() {
        assert_eq!(ok("http://h/cb#code=abc&state=xyz"), params(Some("abc"), Some("xyz"), None));
        assert_eq!(ok("http://h/cb?code=abc#state=xyz"), params(Some("abc"), Some("xyz"), None));
        assert_eq!(ok("http://h/cb?code=q&state=s#code=f&state=g"), params(Some("q"), Some("s"), None));
        assert_eq!(ok("?code=abc#state=xyz"), params(Some("abc"), Some("xyz"), None));
        assert_eq!(ok("http://h/cb?code=&state=s#code=f"), params(Some("f"), Some("s"), None));
    }

    #[test]
    fn code_hash_state_supplies_a_missing_state() {
        assert_eq!(ok("code=abc%23xyz"), params(Some("abc"), Some("xyz"), None));
        assert_eq!(ok("code=abc#xyz"), params(Some("abc"), Some("xyz"), None));
        assert_eq!(ok("http://h/cb?code=abc%23xyz"), params(Some("abc"), Some("xyz"), None));
        // A given state wins and the code is passed on untouched, as in CPA.
        assert_eq!(ok("http://h/cb?code=abc%23xyz&state=s"), params(Some("abc#xyz"), Some("s"), None));
        assert_eq!(ok("code=abc%23"), params(Some("abc"), None, None));
    }

    #[test]
    fn errors_are_read_with_description_as_fallback() {
        assert_eq!(ok("http://h/cb?error=access_denied&state=s"), params(None, Some("s"), Some("access_denied")));
        assert_eq!(ok("?error_description=User+said+no&state=s"), params(None, Some("s"), Some("User said no")));
        assert_eq!(
            ok("?error=access_denied&error_description=User+said+no"),
            params(None, None, Some("access_denied"))
        );
        assert_eq!(ok("http://h/cb#error=server_error"), params(None, None, Some("server_error")));
        assert_eq!(ok("http://h/cb?error=e&code=c&state=s"), params(Some("c"), Some("s"), Some("e")));
    }

    #[test]
    fn rejects_empty_unparsable_and_codeless_input() {
        assert_eq!(parse_callback_input(""), Err(PasteError::Empty));
        assert_eq!(parse_callback_input(" \n\t"), Err(PasteError::Empty));
        assert_eq!(parse_callback_input("http://[::1/cb?code=a"), Err(PasteError::Invalid));
        assert_eq!(parse_callback_input("localhost:99999/cb?code=a"), Err(PasteError::Invalid));
        for input in [
            "just-some-text",
            "http://localhost:54545/callback",
            "http://localhost:54545/callback?state=xyz",
            "?state=xyz",
            "state=xyz",
            "code=&state=xyz",
            "code=%20&state=xyz",
            "=abc",
            "http://h/cb#xyz",
        ] {
            assert_eq!(parse_callback_input(input), Err(PasteError::MissingCode), "{input:?}");
        }
        assert_eq!(PasteError::MissingCode.to_string(), "callback URL missing code");
    }

    #[test]
    fn from_query_takes_first_non_blank_values() {
        let got = CallbackParams::from_query("code=&code=c1&code=c2&state=%20s%20&error_description=d");
        assert_eq!(got, params(Some("c1"), Some("s"), Some("d")));
        assert_eq!(CallbackParams::from_query(""), CallbackParams::default());
    }

    #[test]
    fn debug_never_shows_code_or_state() {
        let text = format!("{:?}", params(Some("secret-code"), Some("secret-state"), Some("denied")));
        assert!(!text.contains("secret-code") && !text.contains("secret-state"), "{text}");
        assert!(text.contains("denied"));
    }
}
