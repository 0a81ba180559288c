//! Positions of values in the TOML text, for error messages.
//!
//! Re-parses the text into a tree of `toml::Spanned` nodes and resolves a field path such as
//! `route[2].via` to the byte offset of that value (or of its nearest present ancestor).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A TOML value reduced to its shape, each child with its span.
enum Node {
    Table(BTreeMap<String, Spanned<Node>>),
    Array(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any TOML value")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Node::Array(v))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut t = BTreeMap::new();
                while let Some((k, v)) = map.next_entry()? {
                    t.insert(k, v);
                }
                Ok(Node::Table(t))
            }
        }
        d.deserialize_any(V)
    }
}

/// 1-based (line, column in characters) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Position of the value at `field` (`a.b[2].c`), or of its deepest present ancestor.
pub(super) fn locate(text: &str, field: &str) -> Option<(usize, usize)> {
    let root: BTreeMap<String, Spanned<Node>> = toml::from_str(text).ok()?;
    let mut steps = Vec::new();
    for part in field.split('.') {
        let mut pieces = part.split('[');
        steps.push(Step::Key(pieces.next()?));
        for idx in pieces {
            steps.push(Step::Index(idx.strip_suffix(']')?.parse().ok()?));
        }
    }
    let mut found: Option<&Spanned<Node>> = None;
    let mut table = Some(&root);
    let mut array: Option<&Vec<Spanned<Node>>> = None;
    for step in steps {
        let next = match step {
            Step::Key(k) => table.and_then(|t| t.get(k)),
            Step::Index(i) => array.and_then(|a| a.get(i)),
        };
        let Some(node) = next else { break };
        found = Some(node);
        (table, array) = match node.get_ref() {
            Node::Table(t) => (Some(t), None),
            Node::Array(a) => (None, Some(a)),
            Node::Leaf => (None, None),
        };
    }
    found.map(|n| line_col(text, n.span().start))
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[[interface]]\nname = \"r0\"\naddress = [\"198.18.0.1/24\", \"x\"]\n\n\
                        [[interface]]\nname = \"r1\"\n[icmp]\nrate = 5\n";

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é = 1\nx", 6), (1, 6));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn locates_paths() {
        assert_eq!(locate(TEXT, "interface[0].name"), Some((2, 8)));
        assert_eq!(locate(TEXT, "interface[0].address[1]"), Some((3, 29)));
        assert_eq!(locate(TEXT, "interface[1].name"), Some((6, 8)));
        assert_eq!(locate(TEXT, "icmp.rate"), Some((8, 8)));
        // Absent leaf: the nearest ancestor (the table header).
        assert_eq!(locate(TEXT, "interface[1].mtu"), Some((5, 1)));
        assert_eq!(locate(TEXT, "icmp.burst"), Some((7, 1)));
        assert_eq!(locate(TEXT, "route[0].via"), None);
        assert_eq!(locate("a = ", "a"), None, "invalid TOML");
    }
}
