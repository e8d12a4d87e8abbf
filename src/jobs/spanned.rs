//! Reading a TOML document key by key, with the position of every key and
//! value, so that each error names the file, the line and the full key
//! (`snap.toml:14: jobs.app.keep.dayly: unknown key (did you mean
//! "daily"?)`). The schema itself lives in `super::config`; this module only
//! knows tables, values, types and positions.
//!
//! Unknown keys are errors: [`Table::finish`] reports the first key no
//! accessor asked for, with the closest known key when one is near.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A configuration error: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given.
    pub file: String,
    /// Line (1-based; 0 when not known).
    pub line: usize,
    /// The full dotted key (empty for the document itself).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Result of reading a configuration.
pub type CResult<T> = Result<T, ConfigError>;

/// A parsed document and what is needed to point into it.
pub struct Doc<'i> {
    file: String,
    line_starts: Vec<usize>,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Doc<'i> {
    /// Parses `text` (read from `file`, named in errors).
    pub fn parse(file: &str, text: &'i str) -> CResult<Doc<'i>> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut doc = Doc {
            file: file.to_string(),
            line_starts,
            root: Spanned::new(0..0, DeTable::new()),
        };
        match DeTable::parse(text) {
            Ok(t) => doc.root = t,
            Err(e) => {
                let line = e.span().map(|s| doc.line_of(s.start)).unwrap_or(0);
                let msg = e.message().trim().replace('\n', " ");
                return Err(doc.error(line, "", format!("not valid TOML: {msg}")));
            }
        }
        Ok(doc)
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    fn error(&self, line: usize, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            message,
        }
    }

    /// An error about the document as a whole.
    pub fn whole_error(&self, message: impl Into<String>) -> ConfigError {
        self.error(0, "", message.into())
    }

    /// The top-level table.
    pub fn root(&self) -> Table<'_, 'i> {
        Table {
            doc: self,
            key: String::new(),
            line: 1,
            table: self.root.get_ref(),
            used: RefCell::new(Vec::new()),
        }
    }
}

/// A table of the document, remembering which keys were read.
pub struct Table<'d, 'i> {
    doc: &'d Doc<'i>,
    key: String,
    line: usize,
    table: &'d DeTable<'i>,
    used: RefCell<Vec<String>>,
}

/// One value of the document.
#[derive(Clone)]
pub struct Value<'d, 'i> {
    doc: &'d Doc<'i>,
    /// Full dotted key.
    pub key: String,
    /// Line of the value.
    pub line: usize,
    v: &'d DeValue<'i>,
}

fn join(parent: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if simple {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

impl<'d, 'i> Table<'d, 'i> {
    /// An error about this table.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        self.doc.error(self.line, &self.key, message.into())
    }

    /// An error about a key of this table (at the key's line, or the
    /// table's when the key is absent).
    pub fn key_error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let line = self
            .table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(k, _)| self.doc.line_of(k.span().start))
            .unwrap_or(self.line);
        self.doc.error(line, &join(&self.key, key), message.into())
    }

    /// The value of `key`, if present (and marks it as known).
    pub fn get(&self, key: &str) -> Option<Value<'d, 'i>> {
        self.used.borrow_mut().push(key.to_string());
        self.table
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(k, v)| Value {
                doc: self.doc,
                key: join(&self.key, key),
                line: self.doc.line_of(k.span().start),
                v: v.get_ref(),
            })
    }

    /// Whether `key` is present (does not mark it as known).
    pub fn has(&self, key: &str) -> bool {
        self.table.iter().any(|(k, _)| k.get_ref() == key)
    }

    /// Entries in document order, as (name, value).
    pub fn entries(&self) -> Vec<(String, Value<'d, 'i>)> {
        self.table
            .iter()
            .map(|(k, v)| {
                self.used.borrow_mut().push(k.get_ref().to_string());
                (
                    k.get_ref().to_string(),
                    Value {
                        doc: self.doc,
                        key: join(&self.key, k.get_ref()),
                        line: self.doc.line_of(k.span().start),
                        v: v.get_ref(),
                    },
                )
            })
            .collect()
    }

    /// Fails on the first key that was never asked for, suggesting the
    /// nearest of `known` (the keys this table may have).
    pub fn finish(&self, known: &[&str]) -> CResult<()> {
        let used = self.used.borrow();
        for (k, _) in self.table.iter() {
            let name = k.get_ref();
            if used.iter().any(|u| u == name.as_ref()) {
                continue;
            }
            let hint = match did_you_mean(name, known) {
                Some(s) => format!(" (did you mean {s:?}?)"),
                None if known.is_empty() => String::new(),
                None => format!(" (known keys: {})", known.join(", ")),
            };
            return Err(self.doc.error(
                self.doc.line_of(k.span().start),
                &join(&self.key, name),
                format!("unknown key{hint}"),
            ));
        }
        Ok(())
    }

    /// A string value.
    pub fn str(&self, key: &str) -> CResult<Option<String>> {
        self.get(key).map(|v| v.str()).transpose()
    }

    /// A list of strings (a single string is a list of one).
    pub fn strings(&self, key: &str) -> CResult<Vec<String>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => v.strings(),
        }
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> CResult<Option<bool>> {
        self.get(key).map(|v| v.bool()).transpose()
    }

    /// A non-negative integer that fits in `u32`.
    pub fn u32(&self, key: &str) -> CResult<Option<u32>> {
        self.get(key).map(|v| v.u32()).transpose()
    }

    /// A duration (`"90s"`, `"2h"`, `"1h 30m"`).
    pub fn duration(&self, key: &str) -> CResult<Option<Duration>> {
        self.get(key).map(|v| v.duration()).transpose()
    }

    /// A sub-table.
    pub fn table(&self, key: &str) -> CResult<Option<Table<'d, 'i>>> {
        self.get(key).map(|v| v.table()).transpose()
    }
}

impl<'d, 'i> Value<'d, 'i> {
    /// An error about this value.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        self.doc.error(self.line, &self.key, message.into())
    }

    fn wrong_type(&self, want: &str) -> ConfigError {
        self.error(format!("expected {want}, found {}", self.v.type_str()))
    }

    /// The value as a string.
    pub fn str(&self) -> CResult<String> {
        self.v
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.wrong_type("a string"))
    }

    /// Whether the value is a string.
    pub fn is_str(&self) -> bool {
        self.v.is_str()
    }

    /// The value as a list of strings; a single string is a list of one.
    pub fn strings(&self) -> CResult<Vec<String>> {
        if let Some(s) = self.v.as_str() {
            return Ok(vec![s.to_string()]);
        }
        self.array()
            .map_err(|_| self.wrong_type("a string or an array of strings"))?
            .iter()
            .map(|v| v.str())
            .collect()
    }

    /// The strings of a list (or the one string), each with its own
    /// position for errors.
    pub fn string_items(&self) -> CResult<Vec<(String, Value<'d, 'i>)>> {
        if let Some(s) = self.v.as_str() {
            return Ok(vec![(s.to_string(), self.clone())]);
        }
        self.array()
            .map_err(|_| self.wrong_type("a string or an array of strings"))?
            .into_iter()
            .map(|v| Ok((v.str()?, v)))
            .collect()
    }

    /// The value as a boolean.
    pub fn bool(&self) -> CResult<bool> {
        self.v
            .as_bool()
            .ok_or_else(|| self.wrong_type("true or false"))
    }

    /// The value as a `u32`.
    pub fn u32(&self) -> CResult<u32> {
        let i = self
            .v
            .as_integer()
            .ok_or_else(|| self.wrong_type("a whole number"))?;
        u32::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| self.error(format!("{} is not a count (0 to 4294967295)", i.as_str())))
    }

    /// The value as a duration (a string such as `"2h"`).
    pub fn duration(&self) -> CResult<Duration> {
        let s = self
            .str()
            .map_err(|_| self.wrong_type("a duration such as \"30m\" or \"2h\""))?;
        let d = humantime::parse_duration(&s).map_err(|e| {
            self.error(format!(
                "{s:?} is not a duration ({e}; e.g. \"90s\", \"30m\", \"2h\")"
            ))
        })?;
        if d.is_zero() {
            return Err(self.error("a duration of zero would stop every command at once"));
        }
        Ok(d)
    }

    /// The value as a table.
    pub fn table(&self) -> CResult<Table<'d, 'i>> {
        let t = self
            .v
            .as_table()
            .ok_or_else(|| self.wrong_type("a table"))?;
        Ok(Table {
            doc: self.doc,
            key: self.key.clone(),
            line: self.line,
            table: t,
            used: RefCell::new(Vec::new()),
        })
    }

    /// Whether the value is a table.
    pub fn is_table(&self) -> bool {
        self.v.is_table()
    }

    /// Whether the value is an array.
    pub fn is_array(&self) -> bool {
        self.v.is_array()
    }

    /// The elements of an array, keyed `KEY[i]`.
    pub fn array(&self) -> CResult<Vec<Value<'d, 'i>>> {
        let a = self
            .v
            .as_array()
            .ok_or_else(|| self.wrong_type("an array"))?;
        Ok(a.iter()
            .enumerate()
            .map(|(i, v)| Value {
                doc: self.doc,
                key: format!("{}[{i}]", self.key),
                line: self.doc.line_of(v.span().start),
                v: v.get_ref(),
            })
            .collect())
    }
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name nearest to `name`, if it is near enough to be a typo.
pub fn did_you_mean<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (distance(&lower, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1) || lower == *k)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];
        assert_eq!(did_you_mean("dayly", &keys), Some("daily"));
        assert_eq!(did_you_mean("montly", &keys), Some("monthly"));
        assert_eq!(did_you_mean("Daily", &keys), Some("daily"));
        assert_eq!(did_you_mean("xyz", &keys), None);
        assert_eq!(
            did_you_mean("password-file", &["password_file"]),
            Some("password_file")
        );
    }

    #[test]
    fn errors_name_line_and_key() {
        let text = "[jobs.app]\npaths = [\"/a\"]\n\n[jobs.app.keep]\ndayly = 3\n";
        let doc = Doc::parse("snap.toml", text).unwrap();
        let root = doc.root();
        let jobs = root.table("jobs").unwrap().unwrap();
        let app = jobs.table("app").unwrap().unwrap();
        let keep = app.table("keep").unwrap().unwrap();
        assert_eq!(keep.u32("daily").unwrap(), None);
        let e = keep.finish(&["daily"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "snap.toml:5: jobs.app.keep.dayly: unknown key (did you mean \"daily\"?)"
        );
        let e = app.get("paths").unwrap().u32().unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.key, "jobs.app.paths");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = Doc::parse("x.toml", "a = 1\nb = = 2\n").err().unwrap();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().starts_with("x.toml:2: not valid TOML"), "{e}");
    }
}
