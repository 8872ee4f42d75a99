//! Account model rules (CPA §4.3): exclusions, aliases and prefixes turn a provider catalogue (or
//! an API key's configured model list) into the model IDs one account exposes to clients. Pure
//! functions, no state.

use std::collections::HashSet;

use switchyard_providers::ModelInfo;

/// One `oauth-model-alias` / `model_aliases` entry: upstream `name` is exposed as `alias`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelAlias {
    pub name: String,
    pub alias: String,
    /// List the upstream name as well as the alias.
    pub fork: bool,
    /// Rewrite the response `model` back to the alias. Only the executor uses it; listings don't.
    pub force_mapping: bool,
}

/// The rules that apply to one account, borrowed from config and its auth file.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccountModelRules<'a> {
    /// Config `oauth-excluded-models[channel]`.
    pub global_excluded: &'a [String],
    /// Auth file `excluded_models`.
    pub account_excluded: &'a [String],
    /// Config `oauth-model-alias[channel]`.
    pub global_aliases: &'a [ModelAlias],
    /// Auth file `model_aliases`; for a given upstream `name` these replace the global ones.
    pub account_aliases: &'a [ModelAlias],
    /// Auth file `prefix`.
    pub prefix: Option<&'a str>,
    /// Config `force-model-prefix`.
    pub force_model_prefix: bool,
}

/// A model as one account exposes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ExposedModel {
    /// Client-visible ID (alias and/or `prefix/` applied).
    pub id: String,
    /// Catalogue ID sent upstream.
    pub upstream: String,
    pub display_name: String,
    pub owned_by: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Case-insensitive glob where `*` matches any run of characters (including none) and everything
/// else matches literally. Without `*` this is a plain case-insensitive comparison.
pub fn pattern_matches(pattern: &str, model: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let model = model.to_lowercase();
    let mut parts = pattern.split('*');
    // `split` always yields a first item; it must be a prefix of the model.
    let Some(rest) = parts.next().and_then(|first| model.strip_prefix(first)) else {
        return false;
    };
    let Some(last) = parts.next_back() else {
        return rest.is_empty(); // no `*`: exact match
    };
    // Strip the suffix from what the prefix left, so the two can't overlap ("ab*ba" vs "aba").
    let Some(mut middle) = rest.strip_suffix(last) else {
        return false;
    };
    // Inner pieces must appear in order; taking the leftmost match each time is never worse.
    for piece in parts {
        match middle.find(piece) {
            Some(at) => middle = &middle[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A catalogue entry, borrowed from a provider's static catalogue or from config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogModel<'c> {
    /// The name sent upstream.
    pub id: &'c str,
    pub display_name: &'c str,
    pub owned_by: &'c str,
    pub kind: &'c str,
}

impl<'c> From<&'c ModelInfo> for CatalogModel<'c> {
    fn from(m: &'c ModelInfo) -> Self {
        Self { id: m.id, display_name: m.display_name, owned_by: m.owned_by, kind: m.kind }
    }
}

/// The models an account exposes, in catalogue order, each ID once.
///
/// Judgement calls where the spec is silent:
/// - Alias `name`s match catalogue IDs case-insensitively, like exclusions. Entries with an empty
///   `alias` are ignored.
/// - An excluded upstream name hides the model and all its aliases (nothing could serve them);
///   an excluded alias hides just that alias.
/// - With several aliases for one name, the upstream name stays listed only if every one of
///   them forks: a single replacing alias is enough to hide it.
/// - An alias keeps the catalogue display name, owner and type.
/// - A prefix is trimmed of spaces and `/`; empty means none. `p/<id>` is listed before `<id>`.
/// - When two entries yield the same ID (e.g. one alias over two names), the first in catalogue
///   order wins.
pub fn account_models<'c, M: Into<CatalogModel<'c>>>(
    catalog: impl IntoIterator<Item = M>,
    rules: &AccountModelRules,
) -> Vec<ExposedModel> {
    let names = catalog.into_iter().map(Into::into).filter(|m| !rules.is_excluded(m.id)).flat_map(|model| {
        let aliases = rules.aliases_for(model.id);
        let keep_upstream = aliases.iter().all(|a| a.fork);
        let names: Vec<&str> =
            keep_upstream.then_some(model.id).into_iter().chain(aliases.iter().map(|a| a.alias.as_str())).collect();
        names.into_iter().map(move |name| (name, model))
    });
    expose(names, rules)
}

/// The models an API-key entry lists explicitly (`models[{name, alias}]`): each pair is the
/// client-visible name (the alias, else the upstream name) and the model behind it. Exclusions,
/// prefix and `force-model-prefix` apply as in [`account_models`]; the rules' aliases do not.
pub fn configured_models<'c>(
    models: impl IntoIterator<Item = (&'c str, CatalogModel<'c>)>,
    rules: &AccountModelRules,
) -> Vec<ExposedModel> {
    expose(models.into_iter().filter(|(_, model)| !rules.is_excluded(model.id)), rules)
}

/// Turns `(client name, model)` pairs into exposed IDs: drops excluded names, applies the
/// prefix, keeps the first of any duplicate ID.
fn expose<'c>(
    names: impl Iterator<Item = (&'c str, CatalogModel<'c>)>,
    rules: &AccountModelRules,
) -> Vec<ExposedModel> {
    let prefix = rules.prefix.map(|p| p.trim().trim_matches('/')).filter(|p| !p.is_empty());
    let mut seen = HashSet::new();
    let mut exposed = Vec::new();
    for (name, model) in names.filter(|(name, _)| !rules.is_excluded(name)) {
        let prefixed = prefix.map(|p| format!("{p}/{name}"));
        let bare = (prefix.is_none() || !rules.force_model_prefix).then(|| name.to_owned());
        for id in prefixed.into_iter().chain(bare) {
            if seen.insert(id.clone()) {
                exposed.push(ExposedModel {
                    id,
                    upstream: model.id.to_owned(),
                    display_name: model.display_name.to_owned(),
                    owned_by: model.owned_by.to_owned(),
                    kind: model.kind.to_owned(),
                });
            }
        }
    }
    exposed
}

impl<'a> AccountModelRules<'a> {
    fn is_excluded(&self, name: &str) -> bool {
        self.global_excluded.iter().chain(self.account_excluded).any(|pattern| pattern_matches(pattern, name))
    }

    /// The aliases for one upstream name: the account's if it has any for that name, else the
    /// global ones.
    fn aliases_for(&self, name: &str) -> Vec<&'a ModelAlias> {
        let matching = |list: &'a [ModelAlias]| -> Vec<&'a ModelAlias> {
            list.iter().filter(|a| a.name.eq_ignore_ascii_case(name) && !a.alias.is_empty()).collect()
        };
        let account = matching(self.account_aliases);
        if account.is_empty() { matching(self.global_aliases) } else { account }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_providers::dialect;

    const CATALOG: &[ModelInfo] = &[
        ModelInfo::new("claude-opus-4-5", "Claude Opus 4.5", "anthropic", dialect::CLAUDE),
        ModelInfo::new("claude-sonnet-4-5", "Claude Sonnet 4.5", "anthropic", dialect::CLAUDE),
        ModelInfo::new("claude-haiku-4-5", "Claude Haiku 4.5", "anthropic", dialect::CLAUDE),
    ];

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn alias(name: &str, alias: &str, fork: bool) -> ModelAlias {
        ModelAlias { name: name.into(), alias: alias.into(), fork, force_mapping: false }
    }

    /// `(id, upstream)` pairs, in order.
    fn listing(rules: &AccountModelRules) -> Vec<(String, String)> {
        account_models(CATALOG, rules).into_iter().map(|m| (m.id, m.upstream)).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(id, up)| (id.to_string(), up.to_string())).collect()
    }

    #[test]
    fn pattern_without_wildcard_is_exact() {
        assert!(pattern_matches("gpt-5", "gpt-5"));
        assert!(!pattern_matches("gpt-5", "gpt-5-codex"));
        assert!(!pattern_matches("gpt-5", "xgpt-5"));
        assert!(!pattern_matches("", "gpt-5"));
    }

    #[test]
    fn pattern_prefix_suffix_and_substring() {
        assert!(pattern_matches("gpt-5*", "gpt-5-codex"));
        assert!(pattern_matches("gpt-5*", "gpt-5"));
        assert!(!pattern_matches("gpt-5*", "o-gpt-5"));
        assert!(pattern_matches("*-thinking", "claude-opus-4-5-thinking"));
        assert!(!pattern_matches("*-thinking", "claude-thinking-x"));
        assert!(pattern_matches("*flash*", "gemini-2.5-flash-lite"));
        assert!(pattern_matches("*flash*", "flash"));
        assert!(!pattern_matches("*flash*", "gemini-2.5-pro"));
    }

    #[test]
    fn pattern_with_several_wildcards() {
        assert!(pattern_matches("gemini-*-flash*", "gemini-2.5-flash-lite"));
        assert!(pattern_matches("a*b*c", "abc"));
        assert!(pattern_matches("a*b*c", "axxbyyc"));
        assert!(!pattern_matches("a*b*c", "acb"));
        assert!(pattern_matches("a**c", "ac"));
        // Prefix and suffix may not share characters.
        assert!(!pattern_matches("ab*ba", "aba"));
        assert!(pattern_matches("ab*ba", "abba"));
    }

    #[test]
    fn bare_star_matches_everything() {
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("*", ""));
    }

    #[test]
    fn patterns_ignore_case() {
        assert!(pattern_matches("GPT-5", "gpt-5"));
        assert!(pattern_matches("Claude-*", "CLAUDE-opus"));
        assert!(pattern_matches("*OPUS*", "claude-opus-4-5"));
    }

    #[test]
    fn no_rules_lists_the_catalogue() {
        let models = account_models(CATALOG, &AccountModelRules::default());
        assert_eq!(
            models[0],
            ExposedModel {
                id: "claude-opus-4-5".into(),
                upstream: "claude-opus-4-5".into(),
                display_name: "Claude Opus 4.5".into(),
                owned_by: "anthropic".into(),
                kind: "claude".into(),
            }
        );
        let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"]);
    }

    #[test]
    fn global_and_account_exclusions_are_merged() {
        let global = strings(&["*opus*"]);
        let account = strings(&["CLAUDE-HAIKU-4-5"]);
        let rules = AccountModelRules { global_excluded: &global, account_excluded: &account, ..Default::default() };
        assert_eq!(listing(&rules), pairs(&[("claude-sonnet-4-5", "claude-sonnet-4-5")]));
    }

    #[test]
    fn exclusion_by_global_alone_and_by_account_alone() {
        let opus = strings(&["claude-opus-4-5"]);
        let by_global = AccountModelRules { global_excluded: &opus, ..Default::default() };
        let by_account = AccountModelRules { account_excluded: &opus, ..Default::default() };
        for rules in [by_global, by_account] {
            let ids: Vec<_> = listing(&rules).into_iter().map(|(id, _)| id).collect();
            assert_eq!(ids, ["claude-sonnet-4-5", "claude-haiku-4-5"]);
        }
    }

    #[test]
    fn excluding_the_upstream_name_hides_its_aliases_too() {
        let excluded = strings(&["claude-haiku-4-5"]);
        let aliases = [alias("claude-haiku-4-5", "fast", true)];
        let rules = AccountModelRules { global_excluded: &excluded, global_aliases: &aliases, ..Default::default() };
        assert!(!listing(&rules).iter().any(|(_, up)| up == "claude-haiku-4-5"));
    }

    #[test]
    fn excluding_an_alias_name_hides_only_that_alias() {
        let excluded = strings(&["fast"]);
        let aliases = [alias("claude-haiku-4-5", "fast", true), alias("claude-haiku-4-5", "quick", true)];
        let rules = AccountModelRules { account_excluded: &excluded, global_aliases: &aliases, ..Default::default() };
        let haiku: Vec<_> =
            listing(&rules).into_iter().filter(|(_, up)| up == "claude-haiku-4-5").map(|(id, _)| id).collect();
        assert_eq!(haiku, ["claude-haiku-4-5", "quick"]);
    }

    #[test]
    fn alias_replaces_the_upstream_name() {
        let aliases = [alias("claude-sonnet-4-5", "sonnet", false)];
        let rules = AccountModelRules { global_aliases: &aliases, ..Default::default() };
        assert_eq!(
            listing(&rules),
            pairs(&[
                ("claude-opus-4-5", "claude-opus-4-5"),
                ("sonnet", "claude-sonnet-4-5"),
                ("claude-haiku-4-5", "claude-haiku-4-5"),
            ])
        );
    }

    #[test]
    fn forked_alias_lists_both_names() {
        let aliases = [alias("Claude-Sonnet-4-5", "sonnet", true)];
        let rules = AccountModelRules { global_aliases: &aliases, ..Default::default() };
        assert_eq!(
            listing(&rules)[1..3],
            pairs(&[("claude-sonnet-4-5", "claude-sonnet-4-5"), ("sonnet", "claude-sonnet-4-5"),])
        );
    }

    #[test]
    fn several_aliases_for_one_name_all_appear() {
        let forks = [alias("claude-opus-4-5", "opus", true), alias("claude-opus-4-5", "big", true)];
        let rules = AccountModelRules { global_aliases: &forks, ..Default::default() };
        assert_eq!(
            listing(&rules)[..3],
            pairs(&[("claude-opus-4-5", "claude-opus-4-5"), ("opus", "claude-opus-4-5"), ("big", "claude-opus-4-5"),])
        );

        // One replacing alias among forks hides the upstream name.
        let mixed = [alias("claude-opus-4-5", "opus", true), alias("claude-opus-4-5", "big", false)];
        let rules = AccountModelRules { global_aliases: &mixed, ..Default::default() };
        assert_eq!(listing(&rules)[..2], pairs(&[("opus", "claude-opus-4-5"), ("big", "claude-opus-4-5")]));
    }

    #[test]
    fn account_alias_overrides_global_alias_for_the_same_name() {
        let global = [alias("claude-opus-4-5", "global-opus", false), alias("claude-haiku-4-5", "global-haiku", false)];
        let account = [alias("claude-opus-4-5", "my-opus", false)];
        let rules = AccountModelRules { global_aliases: &global, account_aliases: &account, ..Default::default() };
        let ids: Vec<_> = listing(&rules).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["my-opus", "claude-sonnet-4-5", "global-haiku"]);
    }

    #[test]
    fn alias_over_two_names_keeps_the_first_in_catalogue_order() {
        let aliases = [alias("claude-haiku-4-5", "pool", false), alias("claude-sonnet-4-5", "pool", false)];
        let rules = AccountModelRules { global_aliases: &aliases, ..Default::default() };
        assert_eq!(listing(&rules), pairs(&[("claude-opus-4-5", "claude-opus-4-5"), ("pool", "claude-sonnet-4-5"),]));
    }

    #[test]
    fn prefix_adds_prefixed_ids_and_keeps_bare_ones() {
        let rules = AccountModelRules { prefix: Some("team"), ..Default::default() };
        let ids: Vec<_> = listing(&rules).into_iter().map(|(id, _)| id).collect();
        assert_eq!(
            ids,
            [
                "team/claude-opus-4-5",
                "claude-opus-4-5",
                "team/claude-sonnet-4-5",
                "claude-sonnet-4-5",
                "team/claude-haiku-4-5",
                "claude-haiku-4-5",
            ]
        );
    }

    #[test]
    fn force_model_prefix_drops_bare_ids_of_prefixed_accounts() {
        let rules = AccountModelRules { prefix: Some(" /team/ "), force_model_prefix: true, ..Default::default() };
        assert_eq!(
            listing(&rules),
            pairs(&[
                ("team/claude-opus-4-5", "claude-opus-4-5"),
                ("team/claude-sonnet-4-5", "claude-sonnet-4-5"),
                ("team/claude-haiku-4-5", "claude-haiku-4-5"),
            ])
        );

        // Without a prefix there is nothing to force.
        for prefix in [None, Some(""), Some("/")] {
            let rules = AccountModelRules { prefix, force_model_prefix: true, ..Default::default() };
            assert_eq!(listing(&rules).len(), CATALOG.len());
        }
    }

    #[test]
    fn all_rules_combined() {
        let global_excluded = strings(&["*haiku*"]);
        let account_excluded = strings(&["big"]);
        let global_aliases =
            [alias("claude-opus-4-5", "big", true), alias("claude-sonnet-4-5", "global-sonnet", false)];
        let account_aliases = [alias("claude-sonnet-4-5", "sonnet", true)];
        let rules = AccountModelRules {
            global_excluded: &global_excluded,
            account_excluded: &account_excluded,
            global_aliases: &global_aliases,
            account_aliases: &account_aliases,
            prefix: Some("p"),
            force_model_prefix: false,
        };
        assert_eq!(
            listing(&rules),
            pairs(&[
                ("p/claude-opus-4-5", "claude-opus-4-5"),
                ("claude-opus-4-5", "claude-opus-4-5"),
                ("p/claude-sonnet-4-5", "claude-sonnet-4-5"),
                ("claude-sonnet-4-5", "claude-sonnet-4-5"),
                ("p/sonnet", "claude-sonnet-4-5"),
                ("sonnet", "claude-sonnet-4-5"),
            ])
        );
    }

    fn configured<'c>(client: &'c str, upstream: &'c str) -> (&'c str, CatalogModel<'c>) {
        (client, CatalogModel { id: upstream, display_name: upstream, owned_by: "o", kind: dialect::OPENAI })
    }

    #[test]
    fn configured_models_list_each_entry_once_under_its_client_name() {
        let excluded = strings(&["*-mini"]);
        let aliases = [alias("big-model", "ignored", false)];
        let rules = AccountModelRules {
            account_excluded: &excluded,
            global_aliases: &aliases,
            prefix: Some("p"),
            ..Default::default()
        };
        let models = [
            configured("big", "big-model"),
            configured("small", "small-mini"), // upstream excluded
            configured("gpt-mini", "gpt"),     // client name excluded
            configured("big", "other"),        // duplicate client name: first wins
            configured("plain", "plain"),
        ];
        let listed: Vec<_> = configured_models(models, &rules).into_iter().map(|m| (m.id, m.upstream)).collect();
        assert_eq!(
            listed,
            pairs(&[("p/big", "big-model"), ("big", "big-model"), ("p/plain", "plain"), ("plain", "plain")])
        );
    }

    #[test]
    fn exposed_model_serialises_kind_as_type() {
        let m = &account_models(CATALOG, &AccountModelRules::default())[0];
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            serde_json::json!({
                "id": "claude-opus-4-5",
                "upstream": "claude-opus-4-5",
                "display_name": "Claude Opus 4.5",
                "owned_by": "anthropic",
                "type": "claude",
            })
        );
    }
}
