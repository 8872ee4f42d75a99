//! Line-level view of a YAML text: where lines start and end, their indentation, and how far a
//! value written after a `key:` or `- ` reaches.

/// The text split into lines (either line ending), with byte offsets.
pub(super) struct Doc<'t> {
    pub text: &'t str,
    starts: Vec<usize>,
    /// The line ending new lines get: the document's own (`\r\n` if it uses it).
    pub newline: &'static str,
}

/// Where a value slot (the text after `key:` or `- `) begins and who owns it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// Byte offset just past the `:` or `-`.
    pub start: usize,
    /// Column (bytes from the line start) of the key or dash owning the slot; lines indented
    /// deeper belong to the value.
    pub owner_indent: usize,
    /// A map key's block list may sit at the key's own indentation (`key:\n- a`).
    pub compact_seq: bool,
}

/// How far a slot's value reaches.
#[derive(Clone, Copy, Debug)]
pub(super) struct Extent {
    /// The value written on the slot's line (a scalar, a flow collection, a block scalar
    /// header); `start == end` when there is none.
    pub inline_start: usize,
    pub inline_end: usize,
    /// End (before the line break) of the line holding `inline_end`: what lies between is the
    /// inline comment, kept.
    pub tail_end: usize,
    /// End (before the line break) of the value's last indented content line, or `tail_end`.
    pub block_end: usize,
    /// Indentation of the first content line of the block part, if there is one.
    pub block_indent: Option<usize>,
}

impl Extent {
    pub fn has_inline(&self) -> bool {
        self.inline_end > self.inline_start
    }

    /// A flow collection (`[...]`, `{...}`) written inline.
    pub fn is_flow(&self, doc: &Doc<'_>) -> bool {
        self.has_inline() && matches!(doc.text.as_bytes()[self.inline_start], b'[' | b'{')
    }
}

impl<'t> Doc<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        if starts.len() > 1 && *starts.last().unwrap_or(&0) == text.len() {
            starts.pop();
        }
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        Doc { text, starts, newline }
    }

    pub fn lines(&self) -> usize {
        self.starts.len()
    }

    pub fn line_start(&self, line: usize) -> usize {
        self.starts[line]
    }

    /// End of a line's content, before `\n` / `\r\n`.
    pub fn line_end(&self, line: usize) -> usize {
        let next = self.starts.get(line + 1).copied().unwrap_or(self.text.len());
        let bytes = self.text.as_bytes();
        let mut end = next;
        if end > self.starts[line] && bytes[end - 1] == b'\n' {
            end -= 1;
        }
        if end > self.starts[line] && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        end
    }

    /// Offset just past a line's break (the next line's start, or the end of the text).
    pub fn line_after(&self, line: usize) -> usize {
        self.starts.get(line + 1).copied().unwrap_or(self.text.len())
    }

    /// 0-based line holding `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).saturating_sub(1)
    }

    fn line_text(&self, line: usize) -> &'t str {
        &self.text[self.line_start(line)..self.line_end(line)]
    }

    pub fn indent(&self, line: usize) -> usize {
        self.line_text(line).bytes().take_while(|&b| b == b' ').count()
    }

    /// Not blank and not only a comment.
    fn is_content(&self, line: usize) -> bool {
        let trimmed = self.line_text(line).trim();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    }

    /// Byte offset of a parser position (1-based line, 1-based column in characters).
    pub fn offset(&self, line: usize, column: usize) -> Option<usize> {
        let line = line.checked_sub(1)?;
        let start = *self.starts.get(line)?;
        let text = &self.text[start..self.line_end(line)];
        let skip = column.checked_sub(1)?;
        match text.char_indices().nth(skip) {
            Some((i, _)) => Some(start + i),
            None if text.chars().count() == skip => Some(start + text.len()),
            None => None,
        }
    }

    /// Column of `offset` in bytes from its line's start.
    pub fn column_of(&self, offset: usize) -> usize {
        offset - self.line_start(self.line_of(offset))
    }

    /// Is `offset` the first non-space byte of its line?
    pub fn starts_line(&self, offset: usize) -> bool {
        let start = self.line_start(self.line_of(offset));
        self.text[start..offset].bytes().all(|b| b == b' ')
    }

    /// The slot after the key that starts at `key_at`: finds the key's end and its `:`.
    pub fn key_slot(&self, key_at: usize) -> Option<Slot> {
        let bytes = self.text.as_bytes();
        let end = match bytes.get(key_at)? {
            b'"' | b'\'' => quoted_end(bytes, key_at)?,
            _ => key_at,
        };
        let line_end = self.line_end(self.line_of(key_at));
        let mut i = end;
        while i < line_end {
            let next = bytes.get(i + 1).copied();
            if bytes[i] == b':' && (i + 1 == line_end || matches!(next, Some(b' ' | b'\t'))) {
                return Some(Slot { start: i + 1, owner_indent: self.column_of(key_at), compact_seq: true });
            }
            i += 1;
        }
        None
    }

    /// The slot of a block list item whose content starts at `item_at` (or whose dash is there).
    pub fn item_slot(&self, item_at: usize) -> Option<Slot> {
        let bytes = self.text.as_bytes();
        let line_start = self.line_start(self.line_of(item_at));
        let mut dash = item_at;
        if bytes.get(dash) != Some(&b'-') {
            dash = item_at.checked_sub(1)?;
            while dash > line_start && bytes[dash] == b' ' {
                dash -= 1;
            }
        }
        (bytes.get(dash) == Some(&b'-')).then(|| Slot {
            start: dash + 1,
            owner_indent: self.column_of(dash),
            compact_seq: false,
        })
    }

    pub fn extent(&self, slot: Slot) -> Extent {
        let bytes = self.text.as_bytes();
        let line = self.line_of(slot.start);
        let line_end = self.line_end(line);
        let mut at = slot.start;
        while at < line_end && matches!(bytes[at], b' ' | b'\t') {
            at += 1;
        }
        let (inline_start, inline_end) =
            if at == line_end || bytes[at] == b'#' { (slot.start, slot.start) } else { (at, self.scan_value(at)) };
        let tail_line = self.line_of(inline_end.max(slot.start));
        let tail_end = self.line_end(tail_line).max(inline_end);
        let mut block_end = tail_end;
        let mut block_indent = None;
        let mut compact = false;
        for next in tail_line + 1..self.lines() {
            if !self.is_content(next) {
                continue;
            }
            let indent = self.indent(next);
            let text = self.line_text(next).trim_start();
            let dash = text == "-" || text.starts_with("- ");
            let compact_item = slot.compact_seq
                && inline_end == inline_start
                && indent == slot.owner_indent
                && dash
                && (compact || block_indent.is_none());
            if indent > slot.owner_indent || compact_item {
                compact |= compact_item;
                block_indent.get_or_insert(indent);
                block_end = self.line_end(next);
            } else {
                break;
            }
        }
        Extent { inline_start, inline_end, tail_end, block_end, block_indent }
    }

    /// End of the value token starting at `at` (quoted, flow, block scalar header or plain).
    fn scan_value(&self, at: usize) -> usize {
        let bytes = self.text.as_bytes();
        match bytes[at] {
            b'"' | b'\'' => quoted_end(bytes, at).unwrap_or(bytes.len()),
            b'[' | b'{' => flow_end(bytes, at),
            _ => {
                // Plain scalar (or block scalar header): up to a ` #` comment or the line end.
                let line_end = self.line_end(self.line_of(at));
                let mut end = at;
                let mut i = at;
                while i < line_end {
                    if bytes[i] == b'#' && matches!(bytes[i - 1], b' ' | b'\t') {
                        break;
                    }
                    if !matches!(bytes[i], b' ' | b'\t') {
                        end = i + 1;
                    }
                    i += 1;
                }
                end
            }
        }
    }
}

/// Offset just past the closing quote of the quoted scalar at `at`.
fn quoted_end(bytes: &[u8], at: usize) -> Option<usize> {
    let quote = bytes[at];
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Offset just past the bracket closing the flow collection at `at`.
fn flow_end(bytes: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' | b'\'' => {
                i = quoted_end(bytes, i).unwrap_or(bytes.len());
                continue;
            }
            b'#' if i > 0 && matches!(bytes[i - 1], b' ' | b'\t' | b'\n') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}
