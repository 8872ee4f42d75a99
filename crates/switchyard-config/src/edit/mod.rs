//! Comment-preserving edits of a `config.yaml` text. An edit rewrites only the bytes of the value
//! it changes (plus the lines of a key or item it adds or removes); comments, key order, quoting,
//! blank lines and indentation elsewhere stay byte-identical. The parser locates keys and items;
//! indentation tells where a value block ends; the new value is spliced in as YAML (block style
//! for maps and lists). A flow collection (`[a, b]`, `{k: v}`) being edited inside is rewritten
//! whole. The result is not validated here: callers hand it to [`ConfigHandle::replace_yaml`].
//!
//! [`ConfigHandle::replace_yaml`]: crate::ConfigHandle::replace_yaml

mod diff;
mod doc;
mod render;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

pub use self::diff::list_edits;
use self::doc::{Doc, Slot};
use crate::ConfigError;
use crate::yaml::{self, Entry, Kind, Node};

/// One step of a key path: a mapping key or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    pub fn key(key: impl Into<String>) -> Self {
        Seg::Key(key.into())
    }
}

/// A path written as in config errors: `claude-api-key[0].base-url`.
pub struct PathDisplay<'a>(pub &'a [Seg]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Sets the value at the path, creating missing keys and parent mappings; an index equal to
    /// the list's length appends an item.
    Set(Vec<Seg>, Value),
    /// Removes a key or a list item.
    Delete(Vec<Seg>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The current text does not parse.
    #[error("{0}")]
    Parse(ConfigError),
    #[error("`{0}` does not exist")]
    NotFound(String),
    #[error("`{path}` {message}")]
    NotEditable { path: String, message: &'static str },
}

/// Applies the edits in order, each to the result of the previous one.
pub fn apply(text: &str, edits: &[Edit]) -> Result<String, EditError> {
    let mut text = text.to_owned();
    for edit in edits {
        text = apply_one(&text, edit)?;
    }
    Ok(text)
}

/// The value at `path` as written in the document (`None` when a step is missing).
pub fn value_at(text: &str, path: &[Seg]) -> Result<Option<Value>, EditError> {
    let root = yaml::load(text).map_err(EditError::Parse)?;
    let mut node = &root;
    for seg in path {
        node = match (seg, &node.kind) {
            (Seg::Key(key), Kind::Map(entries)) => match entries.iter().find(|e| e.key == *key) {
                Some(entry) => &entry.value,
                None => return Ok(None),
            },
            (Seg::Index(index), Kind::Seq(items)) => match items.get(*index) {
                Some(item) => item,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
    }
    Ok(Some(node.to_json()))
}

fn apply_one(text: &str, edit: &Edit) -> Result<String, EditError> {
    let (path, new) = match edit {
        Edit::Set(path, value) => (path.as_slice(), Some(value)),
        Edit::Delete(path) => (path.as_slice(), None),
    };
    let root = yaml::load(text).map_err(EditError::Parse)?;
    let doc = Doc::new(text);
    let not_editable =
        |upto: usize, message| EditError::NotEditable { path: PathDisplay(&path[..upto]).to_string(), message };
    if path.is_empty() || !matches!(root.kind, Kind::Map(_) | Kind::Null) {
        return Err(not_editable(0, "cannot be edited: the document is not a mapping"));
    }
    let mut node = &root;
    // The slot holding `node`'s value; `None` for the root.
    let mut slot: Option<Slot> = None;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        if let Some(s) = slot
            && doc.extent(s).is_flow(&doc)
        {
            let mut value = node.to_json();
            edit_json(&mut value, &path[i..], new).map_err(|missing| missing.under(&path[..i]))?;
            return Ok(replace(&doc, s, &value));
        }
        match (seg, &node.kind) {
            (Seg::Key(key), Kind::Map(entries)) => {
                let Some(entry) = entries.iter().find(|e| e.key == *key) else {
                    let Some(value) = new else {
                        return Err(EditError::NotFound(PathDisplay(&path[..=i]).to_string()));
                    };
                    let nested = nest(&path[i..], value).map_err(|_| not_editable(i + 1, "cannot be created"))?;
                    return Ok(insert_entry(&doc, slot, entries, nested));
                };
                let key_slot = entry_slot(&doc, entry).ok_or_else(|| not_editable(i + 1, "cannot be located"))?;
                if last {
                    return match new {
                        Some(value) => Ok(replace(&doc, key_slot, value)),
                        None => delete_entry(&doc, node, slot, entry, key_slot)
                            .ok_or_else(|| not_editable(i + 1, "cannot be removed")),
                    };
                }
                node = &entry.value;
                slot = Some(key_slot);
            }
            (Seg::Key(_), Kind::Null) | (Seg::Index(0), Kind::Null) => {
                let Some(value) = new else {
                    return Err(EditError::NotFound(PathDisplay(&path[..=i]).to_string()));
                };
                let nested = nest(&path[i..], value).map_err(|_| not_editable(i + 1, "cannot be created"))?;
                return match slot {
                    Some(s) => Ok(replace(&doc, s, &nested)),
                    None if nested.is_object() => Ok(append_root(&doc, &nested)),
                    None => Err(not_editable(0, "cannot be edited: the document is not a list")),
                };
            }
            (Seg::Index(index), Kind::Seq(items)) => {
                let Some(s) = slot else {
                    return Err(not_editable(i, "is not a list"));
                };
                let Some(item) = items.get(*index) else {
                    return match new {
                        Some(value) if *index == items.len() && last => {
                            append_item(&doc, s, items, value).ok_or_else(|| not_editable(i, "cannot be extended"))
                        }
                        _ => Err(EditError::NotFound(PathDisplay(&path[..=i]).to_string())),
                    };
                };
                let item_slot = doc
                    .offset(item.line, item.column)
                    .and_then(|at| doc.item_slot(at))
                    .ok_or_else(|| not_editable(i + 1, "cannot be located"))?;
                if last {
                    return match new {
                        Some(value) => Ok(replace(&doc, item_slot, value)),
                        None => delete_item(&doc, node, s, items.len(), *index, item_slot)
                            .ok_or_else(|| not_editable(i + 1, "cannot be removed")),
                    };
                }
                node = item;
                slot = Some(item_slot);
            }
            (Seg::Key(_), _) => return Err(not_editable(i, "is not a mapping")),
            (Seg::Index(_), _) => return Err(not_editable(i, "is not a list")),
        }
    }
    unreachable!("the loop returns at the last path step")
}

fn entry_slot(doc: &Doc<'_>, entry: &Entry<'_>) -> Option<Slot> {
    doc.offset(entry.line, entry.column).and_then(|at| doc.key_slot(at))
}

/// `value` wrapped in the mappings (and a one-item list for index 0) that `path` names.
fn nest(path: &[Seg], value: &Value) -> Result<Value, ()> {
    let mut nested = value.clone();
    for seg in path.iter().rev() {
        nested = match seg {
            Seg::Key(key) => Value::Object([(key.clone(), nested)].into_iter().collect()),
            Seg::Index(0) => Value::Array(vec![nested]),
            Seg::Index(_) => return Err(()),
        };
    }
    Ok(nested)
}

/// A missing path step found while editing a JSON value.
struct Missing(Vec<Seg>);

impl Missing {
    fn under(self, parent: &[Seg]) -> EditError {
        let mut path = parent.to_vec();
        path.extend(self.0);
        EditError::NotFound(PathDisplay(&path).to_string())
    }
}

/// The same edit applied to a JSON value (for flow collections, rewritten whole).
fn edit_json(value: &mut Value, path: &[Seg], new: Option<&Value>) -> Result<(), Missing> {
    let missing = |upto: usize| Missing(path[..upto].to_vec());
    let (last, parents) = path.split_last().ok_or(Missing(Vec::new()))?;
    let mut target = value;
    for (i, seg) in parents.iter().enumerate() {
        if target.is_null() && new.is_some() {
            *target =
                if matches!(seg, Seg::Key(_)) { Value::Object(Default::default()) } else { Value::Array(Vec::new()) };
        }
        target = match (seg, target) {
            (Seg::Key(key), Value::Object(map)) => {
                if new.is_some() {
                    map.entry(key.clone()).or_insert(Value::Null)
                } else {
                    map.get_mut(key).ok_or_else(|| missing(i + 1))?
                }
            }
            (Seg::Index(index), Value::Array(items)) => items.get_mut(*index).ok_or_else(|| missing(i + 1))?,
            _ => return Err(missing(i + 1)),
        };
    }
    if target.is_null() && new.is_some() {
        *target =
            if matches!(last, Seg::Key(_)) { Value::Object(Default::default()) } else { Value::Array(Vec::new()) };
    }
    match (last, target, new) {
        (Seg::Key(key), Value::Object(map), Some(v)) => {
            map.insert(key.clone(), v.clone());
        }
        (Seg::Key(key), Value::Object(map), None) => {
            map.shift_remove(key).ok_or_else(|| missing(path.len()))?;
        }
        (Seg::Index(index), Value::Array(items), Some(v)) if *index < items.len() => items[*index] = v.clone(),
        (Seg::Index(index), Value::Array(items), Some(v)) if *index == items.len() => items.push(v.clone()),
        (Seg::Index(index), Value::Array(items), None) if *index < items.len() => {
            items.remove(*index);
        }
        _ => return Err(missing(path.len())),
    }
    Ok(())
}

/// The text with the value in `slot` replaced by `value`; the slot line's comment is kept.
fn replace(doc: &Doc<'_>, slot: Slot, value: &Value) -> String {
    let text = doc.text;
    let ext = doc.extent(slot);
    let mut out = String::with_capacity(text.len() + 64);
    out.push_str(&text[..slot.start]);
    // A flow collection stays one when the new value fits on its line.
    let flow = ext.is_flow(doc).then(|| render::flow(value)).flatten();
    if render::is_inline(value) || flow.is_some() {
        out.push_str(if ext.has_inline() { &text[slot.start..ext.inline_start] } else { " " });
        out.push_str(&flow.unwrap_or_else(|| render::inline(value)));
        out.push_str(&text[ext.inline_end..ext.tail_end]);
    } else {
        let comment = &text[ext.inline_end..ext.tail_end];
        let comment = if comment.trim().is_empty() { "" } else { comment };
        let item = !slot.compact_seq;
        let indent = if item {
            if ext.has_inline() { doc.column_of(ext.inline_start) } else { slot.owner_indent + 2 }
        } else {
            match ext.block_indent {
                // Keep the indentation the block already had (a compact list only for lists).
                Some(indent) if indent > slot.owner_indent || value.is_array() => indent,
                _ => slot.owner_indent + 2,
            }
        };
        let mut lines = Vec::new();
        render::block(value, indent, &mut lines);
        if item {
            // The first line goes on the dash's own line: `- api-key: ...`.
            let first = lines.remove(0);
            out.push(' ');
            out.push_str(first.trim_start());
        }
        out.push_str(comment);
        for line in lines {
            out.push_str(doc.newline);
            out.push_str(&line);
        }
    }
    out.push_str(&text[ext.block_end..]);
    out
}

/// Adds `pair` (a one-key mapping) at the end of the block mapping held in `slot` (or the root).
fn insert_entry(doc: &Doc<'_>, slot: Option<Slot>, entries: &[Entry<'_>], pair: Value) -> String {
    let Some(slot) = slot else {
        return append_root(doc, &pair);
    };
    let text = doc.text;
    let ext = doc.extent(slot);
    let indent = entries
        .first()
        .and_then(|e| doc.offset(e.line, e.column))
        .map_or(slot.owner_indent + 2, |at| doc.column_of(at));
    let mut lines = Vec::new();
    render::block(&pair, indent, &mut lines);
    let mut out = text[..ext.block_end].to_owned();
    for line in lines {
        out.push_str(doc.newline);
        out.push_str(&line);
    }
    out.push_str(&text[ext.block_end..]);
    out
}

/// Adds top-level keys at the end of the document.
fn append_root(doc: &Doc<'_>, pairs: &Value) -> String {
    let mut out = doc.text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(doc.newline);
    }
    let mut lines = Vec::new();
    render::block(pairs, 0, &mut lines);
    for line in lines {
        out.push_str(&line);
        out.push_str(doc.newline);
    }
    out
}

/// Adds an item after the last one of the block list held in `slot`.
fn append_item(doc: &Doc<'_>, slot: Slot, items: &[Node<'_>], value: &Value) -> Option<String> {
    let text = doc.text;
    let first = items.first()?;
    let dash = doc.item_slot(doc.offset(first.line, first.column)?)?;
    let ext = doc.extent(slot);
    let mut lines = Vec::new();
    render::block(&Value::Array(vec![value.clone()]), dash.owner_indent, &mut lines);
    let mut out = text[..ext.block_end].to_owned();
    for line in lines {
        out.push_str(doc.newline);
        out.push_str(&line);
    }
    out.push_str(&text[ext.block_end..]);
    Some(out)
}

/// The text without the lines from `first_at`'s line through the value in `slot`.
fn cut_lines(doc: &Doc<'_>, first_at: usize, slot: Slot) -> String {
    let ext = doc.extent(slot);
    let start = doc.line_start(doc.line_of(first_at));
    let end = doc.line_after(doc.line_of(ext.block_end));
    format!("{}{}", &doc.text[..start], &doc.text[end..])
}

fn delete_entry(
    doc: &Doc<'_>,
    map: &Node<'_>,
    map_slot: Option<Slot>,
    entry: &Entry<'_>,
    key_slot: Slot,
) -> Option<String> {
    let Kind::Map(entries) = &map.kind else { return None };
    let key_at = doc.offset(entry.line, entry.column)?;
    match map_slot {
        // The last key of a nested mapping: keep its parent key, now `{}`.
        Some(parent) if entries.len() == 1 => Some(replace(doc, parent, &Value::Object(Default::default()))),
        // The first key of a list item (`- api-key: ...`): rewrite that item.
        Some(parent) if !doc.starts_line(key_at) => {
            let mut value = map.to_json();
            value.as_object_mut()?.shift_remove(&entry.key);
            Some(replace(doc, parent, &value))
        }
        _ => Some(cut_lines(doc, key_at, key_slot)),
    }
}

fn delete_item(
    doc: &Doc<'_>,
    list: &Node<'_>,
    list_slot: Slot,
    len: usize,
    index: usize,
    item_slot: Slot,
) -> Option<String> {
    let dash_at = item_slot.start - 1;
    if len == 1 {
        return Some(replace(doc, list_slot, &Value::Array(Vec::new())));
    }
    if !doc.starts_line(dash_at) {
        let mut value = list.to_json();
        value.as_array_mut()?.remove(index);
        return Some(replace(doc, list_slot, &value));
    }
    Some(cut_lines(doc, dash_at, item_slot))
}
