//! YAML front end. serde-saphyr parses the text into a tree of located nodes (it handles the
//! syntax, anchors, aliases and merge keys); a small serde `Deserializer` over that tree then
//! builds the typed [`Config`](crate::Config). Doing the typing ourselves gives every error a
//! dotted field path plus line, lets `key:` with no value mean "default" like Go's yaml.v3 does,
//! hands string fields the exact source token of unquoted numbers (`secret-key: 007` stays
//! `007`), and reports keys the target struct does not declare.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, Expected, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_saphyr::{MessageFormatter, Spanned, UserMessageFormatter};

use crate::ConfigError;

/// A parsed YAML node with the position where it is used (1-based).
#[derive(Debug)]
pub(crate) struct Node<'s> {
    pub kind: Kind<'s>,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug)]
pub(crate) enum Kind<'s> {
    Null,
    /// Booleans and numbers keep their source token: that is what a string field receives.
    Bool(bool, Cow<'s, str>),
    Int(i64, Cow<'s, str>),
    UInt(u64, Cow<'s, str>),
    Float(f64, Cow<'s, str>),
    Str(String),
    Seq(Vec<Node<'s>>),
    Map(Vec<Entry<'s>>),
}

#[derive(Debug)]
pub(crate) struct Entry<'s> {
    pub key: String,
    /// Line and column of the key itself (1-based; the column counts characters).
    pub line: usize,
    pub column: usize,
    pub value: Node<'s>,
}

/// Parses one YAML document. An empty document yields a `Null` node.
pub(crate) fn load(source: &str) -> Result<Node<'_>, ConfigError> {
    let raw: Spanned<Raw> = serde_saphyr::from_str(source).map_err(|err| {
        let location = err.location().filter(|l| l.line() > 0);
        ConfigError {
            line: location.map(|l| l.line() as usize),
            column: location.map(|l| l.column() as usize),
            field: None,
            // The user formatter leaves out developer hints and the location suffix.
            message: UserMessageFormatter.format_message(&err).into_owned(),
        }
    })?;
    Ok(Node::build(raw, source))
}

/// What serde-saphyr produces before source tokens are attached.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::UInt(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Raw::Map(entries))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

impl<'s> Node<'s> {
    fn build(raw: Spanned<Raw>, source: &'s str) -> Self {
        // `defined` points at the original scalar even when it is reached through an alias.
        let span = raw.defined.span();
        let token = |fallback: String| -> Cow<'s, str> {
            span.byte_offset()
                .zip(span.byte_len())
                .and_then(|(start, len)| source.get(start as usize..(start + len) as usize))
                .map_or(Cow::Owned(fallback), Cow::Borrowed)
        };
        let kind = match raw.value {
            Raw::Null => Kind::Null,
            Raw::Bool(v) => Kind::Bool(v, token(v.to_string())),
            Raw::Int(v) => Kind::Int(v, token(v.to_string())),
            Raw::UInt(v) => Kind::UInt(v, token(v.to_string())),
            Raw::Float(v) => Kind::Float(v, token(v.to_string())),
            Raw::Str(v) => Kind::Str(v),
            Raw::Seq(items) => Kind::Seq(items.into_iter().map(|i| Node::build(i, source)).collect()),
            Raw::Map(entries) => Kind::Map(
                entries
                    .into_iter()
                    .map(|(key, value)| Entry {
                        line: key.referenced.line() as usize,
                        column: key.referenced.column() as usize,
                        key: key.value,
                        value: Node::build(value, source),
                    })
                    .collect(),
            ),
        };
        Node { kind, line: raw.referenced.line() as usize, column: raw.referenced.column() as usize }
    }

    /// The node as JSON, for keys kept verbatim. Non-finite floats have no JSON form and are
    /// kept as their source token.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(v, _) => Value::Bool(*v),
            Kind::Int(v, _) => Value::from(*v),
            Kind::UInt(v, _) => Value::from(*v),
            Kind::Float(v, token) => {
                serde_json::Number::from_f64(*v).map_or_else(|| Value::String(token.to_string()), Value::Number)
            }
            Kind::Str(v) => Value::String(v.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
        }
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match &self.kind {
            Kind::Null => Unexpected::Unit,
            Kind::Bool(v, _) => Unexpected::Bool(*v),
            Kind::Int(v, _) => Unexpected::Signed(*v),
            Kind::UInt(v, _) => Unexpected::Unsigned(*v),
            Kind::Float(v, _) => Unexpected::Float(*v),
            Kind::Str(v) => Unexpected::Str(v),
            Kind::Seq(_) => Unexpected::Seq,
            Kind::Map(_) => Unexpected::Map,
        }
    }

    /// The node at a dotted path as produced by this module (`a.b[2].c`).
    pub fn find(&self, path: &str) -> Option<&Node<'s>> {
        self.find_below("", path)
    }

    fn find_below(&self, here: &str, target: &str) -> Option<&Node<'s>> {
        if here == target {
            return Some(self);
        }
        match &self.kind {
            Kind::Map(entries) => entries.iter().find_map(|e| {
                let path = child_key(here, &e.key);
                target.starts_with(&path).then(|| e.value.find_below(&path, target)).flatten()
            }),
            Kind::Seq(items) => items.iter().enumerate().find_map(|(i, item)| {
                let path = child_index(here, i);
                target.starts_with(&path).then(|| item.find_below(&path, target)).flatten()
            }),
            _ => None,
        }
    }
}

pub(crate) fn child_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

pub(crate) fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// A key the target struct does not declare.
pub(crate) struct Unknown {
    /// Rust name of the struct the key appeared in (serde passes it to `deserialize_struct`).
    pub container: &'static str,
    pub key: String,
    pub path: String,
    pub line: usize,
    pub value: serde_json::Value,
}

pub(crate) type Unknowns = RefCell<Vec<Unknown>>;

/// Deserialization error: a message plus where it happened, filled in by the innermost node.
#[derive(Debug)]
pub(crate) struct DeError {
    pub message: String,
    pub at: Option<(String, usize, usize)>,
}

impl DeError {
    fn locate(mut self, path: &str, node: &Node<'_>) -> Self {
        if self.at.is_none() {
            self.at = Some((path.to_owned(), node.line, node.column));
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), at: None }
    }

    // serde's defaults quote the offending string, which may be an API key or secret.
    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::custom(format_args!("invalid type: {}, expected {expected}", without_text(unexpected)))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self::custom(format_args!("invalid value: {}, expected {expected}", without_text(unexpected)))
    }
}

fn without_text(unexpected: Unexpected<'_>) -> Cow<'static, str> {
    match unexpected {
        Unexpected::Str(_) => "a string".into(),
        Unexpected::Char(_) => "a character".into(),
        Unexpected::Bytes(_) => "bytes".into(),
        other => other.to_string().into(),
    }
}

/// Deserializer for one node at a known path.
pub(crate) struct De<'a> {
    node: &'a Node<'a>,
    path: String,
    unknowns: &'a Unknowns,
}

impl<'a> De<'a> {
    pub fn root(node: &'a Node<'a>, unknowns: &'a Unknowns) -> Self {
        De { node, path: String::new(), unknowns }
    }

    fn map(&self, entries: &'a [Entry<'a>], schema: Option<Schema>) -> MapDe<'a> {
        MapDe { entries: entries.iter(), pending: None, parent: self.path.clone(), unknowns: self.unknowns, schema }
    }

    fn deserialize_int<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Int(v, _) => visitor.visit_i64(*v),
            Kind::UInt(v, _) => visitor.visit_u64(*v),
            // `007` resolves to a float; as an integer it is plainly 7.
            Kind::Float(_, token) => match token.parse::<i64>() {
                Ok(v) => visitor.visit_i64(v),
                Err(_) => return self.deserialize_any(visitor),
            },
            _ => return self.deserialize_any(visitor),
        };
        result.map_err(|e: DeError| e.locate(&self.path, self.node))
    }
}

/// The struct being filled: its name and declared keys.
type Schema = (&'static str, &'static [&'static str]);

macro_rules! int_methods {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.deserialize_int(visitor)
        }
    )*};
}

impl<'de, 'a> Deserializer<'de> for De<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Bool(v, _) => visitor.visit_bool(*v),
            Kind::Int(v, _) => visitor.visit_i64(*v),
            Kind::UInt(v, _) => visitor.visit_u64(*v),
            Kind::Float(v, _) => visitor.visit_f64(*v),
            Kind::Str(v) => visitor.visit_str(v),
            Kind::Seq(items) => visitor.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                parent: self.path.clone(),
                unknowns: self.unknowns,
            }),
            Kind::Map(entries) => visitor.visit_map(self.map(entries, None)),
        };
        result.map_err(|e: DeError| e.locate(&self.path, self.node))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = match &self.node.kind {
            Kind::Str(v) => v.as_str(),
            Kind::Bool(_, token) | Kind::Int(_, token) | Kind::UInt(_, token) | Kind::Float(_, token) => token,
            _ => return self.deserialize_any(visitor),
        };
        visitor.visit_str(text).map_err(|e: DeError| e.locate(&self.path, self.node))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            Kind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let entries: &[Entry<'_>] = match &self.node.kind {
            Kind::Map(entries) => entries,
            // An empty document, or a bare `-` list item: all defaults.
            Kind::Null => &[],
            // Not deserialize_any: serde's derived visitor would accept a list positionally.
            _ => {
                let err: DeError = de::Error::invalid_type(self.node.unexpected(), &visitor);
                return Err(err.locate(&self.path, self.node));
            }
        };
        visitor.visit_map(self.map(entries, Some((name, fields)))).map_err(|e: DeError| e.locate(&self.path, self.node))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            Kind::Bool(v, _) => visitor.visit_bool(v).map_err(|e: DeError| e.locate(&self.path, self.node)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    int_methods!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    forward_to_deserialize_any! {
        i128 u128 f32 f64 char bytes byte_buf unit unit_struct seq tuple tuple_struct map enum
        identifier
    }
}

struct SeqDe<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node<'a>>>,
    parent: String,
    unknowns: &'a Unknowns,
}

impl<'de, 'a> SeqAccess<'de> for SeqDe<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = child_index(&self.parent, index);
        seed.deserialize(De { node, path: path.clone(), unknowns: self.unknowns })
            .map(Some)
            .map_err(|e| e.locate(&path, node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, Entry<'a>>,
    pending: Option<(&'a Node<'a>, String)>,
    parent: String,
    unknowns: &'a Unknowns,
    schema: Option<Schema>,
}

impl<'de, 'a> MapAccess<'de> for MapDe<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        for entry in self.entries.by_ref() {
            let path = child_key(&self.parent, &entry.key);
            if let Some((container, fields)) = self.schema
                && !fields.contains(&entry.key.as_str())
            {
                self.unknowns.borrow_mut().push(Unknown {
                    container,
                    key: entry.key.clone(),
                    path,
                    line: entry.line,
                    value: entry.value.to_json(),
                });
                continue;
            }
            // `key:` with no value means "use the default", as with CPA's yaml.v3.
            if matches!(entry.value.kind, Kind::Null) {
                continue;
            }
            self.pending = Some((&entry.value, path));
            return seed.deserialize(entry.key.as_str().into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (node, path) =
            self.pending.take().ok_or_else(|| <DeError as de::Error>::custom("map value requested before its key"))?;
        // Also catches errors a type raises after reading its value (e.g. a bad strategy name).
        seed.deserialize(De { node, path: path.clone(), unknowns: self.unknowns }).map_err(|e| e.locate(&path, node))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_records_lines_tokens_and_paths() {
        let text = "a: 007\nlist:\n  - x: yes\n  - 'q'\n";
        let root = load(text).unwrap();
        let a = root.find("a").unwrap();
        assert!(matches!(&a.kind, Kind::Float(_, t) if t == "007"), "{a:?}");
        assert_eq!((a.line, a.column), (1, 4));
        let x = root.find("list[0].x").unwrap();
        assert!(matches!(&x.kind, Kind::Bool(true, t) if t == "yes"), "{x:?}");
        assert_eq!(x.line, 3);
        assert!(matches!(&root.find("list[1]").unwrap().kind, Kind::Str(s) if s == "q"));
        assert!(root.find("list[2]").is_none());
    }

    #[test]
    fn aliases_resolve_to_the_anchored_token() {
        let root = load("base: &b 0x1F\ncopy: *b\n").unwrap();
        let copy = root.find("copy").unwrap();
        assert!(matches!(&copy.kind, Kind::UInt(31, t) if t == "0x1F"), "{copy:?}");
        assert_eq!(copy.line, 2);
    }

    #[test]
    fn syntax_errors_carry_a_location() {
        let err = load("a: 1\nb: [\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.field.is_none());
        assert!(!err.message.contains("line"), "{}", err.message);
    }

    #[test]
    fn type_error_messages_never_quote_strings() {
        let err = <DeError as de::Error>::invalid_type(Unexpected::Str("sk-secret"), &"a number");
        assert_eq!(err.message, "invalid type: a string, expected a number");
    }
}
