//! `memberdb repl`: the analyst's prompt. Line editing and history (rustyline), multi-line
//! statements, completion of keywords and catalog names, `\timing`, `\format`, `\help`.
//! When stdin is not a terminal it reads statements from stdin, so it can be scripted.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use memberdb::{Database, Timestamp};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::render::{Format, render, truncation_note};

/// Arguments of `memberdb repl`.
#[derive(clap::Args)]
pub(crate) struct ReplArgs {
    /// Database directory; without it, the sample database built from data-samples/.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Pin *now* for time windows; default: the wall clock.
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

const HELP: &str = r#"A line that holds complete statements runs at once; an unfinished one (ending in AND,
OR, an open parenthesis, ...) continues on the next line, until the statement is complete
or ends with ';'.

  COUNT TAG 'vip' AND NOT TAG 'churn_risk' AND city = 'Shanghai'
  COUNT DID claim_coupon AND NOT DID redeem_coupon
  COUNT DID purchase AT LEAST 3 TIMES IN LAST 90 DAYS
  COUNT DID purchase WHERE amount >= 500 IN LAST 7 DAYS AND points BETWEEN 1000 AND 5000
  FIND DID purchase IN LAST 7 DAYS AND TAG 'vip' SHOW phone, city LIMIT 10
  BREAKDOWN DID claim_coupon AND NOT DID redeem_coupon BY city TOP 5
  DEFINE GROUP reminder AS DID claim_coupon AND NOT DID redeem_coupon
  EXPLAIN TAG 'vip' AND DID purchase IN LAST 30 DAYS
  SHOW ATTRIBUTES | TAGS | EVENTS | GROUPS
  COUNT DID purchase IN LAST 30 DAYS AS OF '2026-11-01T00:00:00Z'

Commands: \timing (toggle statement times in µs), \format table|json|csv, \help, \q"#;

const KEYWORDS: &[&str] = &[
    "COUNT",
    "FIND",
    "SHOW",
    "LIMIT",
    "OFFSET",
    "BREAKDOWN",
    "BY",
    "TOP",
    "DEFINE",
    "GROUP",
    "AS",
    "DROP",
    "EXPLAIN",
    "ATTRIBUTES",
    "TAGS",
    "EVENTS",
    "GROUPS",
    "LOADS",
    "OF",
    "OR",
    "AND",
    "NOT",
    "ALL",
    "TAG",
    "IN",
    "DID",
    "WHERE",
    "EXACTLY",
    "AT",
    "LEAST",
    "MOST",
    "TIMES",
    "LAST",
    "SINCE",
    "BEFORE",
    "HOURS",
    "DAYS",
    "WEEKS",
    "BETWEEN",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
];

/// A REPL session: the database and the settings, fed one line at a time.
pub(crate) struct Session {
    db: Database,
    now: Option<Timestamp>,
    format: Format,
    timing: bool,
    buffer: String,
    dirty: bool,
}

/// What a line produced.
pub(crate) enum Reply {
    /// Print on stdout.
    Out(String),
    /// Print on stderr: an error.
    Err(String),
    /// Print on stderr: a note about a result (not a failure).
    Note(String),
    /// Leave.
    Quit,
}

impl Session {
    pub(crate) fn new(db: Database, now: Option<Timestamp>, format: Format) -> Self {
        Session {
            db,
            now,
            format,
            timing: false,
            buffer: String::new(),
            dirty: false,
        }
    }

    /// True while a statement spans several lines.
    pub(crate) fn continuing(&self) -> bool {
        !self.buffer.trim().is_empty()
    }

    /// Feeds one line; returns what to print.
    pub(crate) fn feed(&mut self, line: &str) -> Vec<Reply> {
        let trimmed = line.trim();
        if !self.continuing() && trimmed.starts_with('\\') {
            return vec![self.command(trimmed)];
        }
        // As in psql: `exit`, `quit` and `help` alone on a line need no backslash (none of
        // them begins a statement of the language).
        if !self.continuing() {
            match trimmed.trim_end_matches(';').to_ascii_lowercase().as_str() {
                "exit" | "quit" => return vec![Reply::Quit],
                "help" => return vec![self.command("\\help")],
                _ => {}
            }
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        let text = self.buffer.clone();
        match memberdb::query::parse_script(&text) {
            Ok(statements) => {
                self.buffer.clear();
                let mut replies = Vec::new();
                for statement in &statements {
                    let started = Instant::now();
                    match super::run_statement(&self.db, statement, self.now) {
                        Ok(output) => {
                            self.dirty |= output.is_write();
                            let mut shown = render(&output, self.format);
                            if self.timing {
                                shown
                                    .push_str(&format!("\n({} µs)", started.elapsed().as_micros()));
                            }
                            replies.push(Reply::Out(shown));
                            if let Some(note) = truncation_note(&output, self.format) {
                                replies.push(Reply::Note(note));
                            }
                            for hint in self.db.value_hints(statement) {
                                replies.push(Reply::Note(format!("hint: {hint}")));
                            }
                        }
                        Err(e) => {
                            replies.push(Reply::Err(e.render(&text)));
                            break;
                        }
                    }
                }
                replies
            }
            // The statement is not finished yet: keep reading.
            Err(e) if e.span.start >= text.trim_end().len() && !trimmed.ends_with(';') => {
                Vec::new()
            }
            Err(e) => {
                self.buffer.clear();
                vec![Reply::Err(e.render())]
            }
        }
    }

    /// Ends the input: runs what is left, saves what changed.
    pub(crate) fn finish(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        if self.continuing() {
            let rest = std::mem::take(&mut self.buffer);
            replies = self.feed(&format!("{rest};"));
        }
        if self.dirty {
            if let Err(e) = self.db.save() {
                replies.push(Reply::Err(format!("cannot save the database: {e}")));
            }
            self.dirty = false;
        }
        replies
    }

    fn command(&mut self, command: &str) -> Reply {
        let mut words = command.split_whitespace();
        match (words.next().unwrap_or(""), words.next()) {
            ("\\q" | "\\quit", _) => Reply::Quit,
            ("\\help" | "\\h" | "\\?", _) => Reply::Out(HELP.to_string()),
            ("\\timing", _) => {
                self.timing = !self.timing;
                Reply::Out(format!(
                    "timing is {}",
                    if self.timing { "on" } else { "off" }
                ))
            }
            ("\\format", Some(f)) => match <Format as clap::ValueEnum>::from_str(f, true) {
                Ok(format) => {
                    self.format = format;
                    Reply::Out(format!("format is {f}"))
                }
                Err(_) => Reply::Err(format!("unknown format '{f}': use table, json or csv")),
            },
            ("\\format", None) => Reply::Err("\\format needs table, json or csv".to_string()),
            (other, _) => Reply::Err(format!("unknown command {other}; try \\help")),
        }
    }

    /// Names to complete: keywords, attributes, events, properties, groups, quoted tags.
    fn vocabulary(&self) -> Vec<String> {
        let mut words: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        words.extend(self.db.attributes().into_iter().map(|a| a.name));
        words.extend(self.db.event_types().into_iter().map(|(e, _)| e));
        words.extend(self.db.event_properties().into_iter().map(|(p, _)| p));
        words.extend(self.db.groups().into_iter().map(|g| g.name));
        words.extend(
            self.db
                .tags()
                .into_iter()
                .map(|(t, _)| format!("'{}'", t.replace('\'', "''"))),
        );
        words
    }
}

/// Completion of the word before the cursor.
pub(crate) fn complete(vocabulary: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '\''))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if word.is_empty() {
        return (pos, Vec::new());
    }
    let lower = word.to_lowercase();
    let mut hits: Vec<String> = vocabulary
        .iter()
        .filter(|w| w.to_lowercase().starts_with(&lower))
        .map(|w| {
            if w.chars().all(|c| c.is_ascii_uppercase()) && word.chars().all(|c| c.is_lowercase()) {
                w.to_lowercase()
            } else {
                w.clone()
            }
        })
        .collect();
    hits.sort();
    hits.dedup();
    (start, hits)
}

struct ReplHelper {
    vocabulary: Vec<String>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, hits) = complete(&self.vocabulary, line, pos);
        Ok((
            start,
            hits.into_iter()
                .map(|h| Pair {
                    display: h.clone(),
                    replacement: h,
                })
                .collect(),
        ))
    }
}
impl Hinter for ReplHelper {
    type Hint = String;
}
impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}

fn history_file() -> Option<PathBuf> {
    std::env::var_os("MEMBERDB_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".memberdb_history")))
}

pub(crate) fn run(args: ReplArgs) -> Result<()> {
    let now = super::query::parse_now(args.now.as_deref())?;
    let db = super::open_db(args.db.as_deref())?;
    let mut session = Session::new(db, now, args.format);
    let mut failed = false;
    let mut show = |replies: Vec<Reply>| -> bool {
        for reply in replies {
            match reply {
                Reply::Out(text) => println!("{text}"),
                Reply::Note(text) => eprintln!("{text}"),
                Reply::Err(text) => {
                    failed = true;
                    eprintln!("{text}");
                }
                Reply::Quit => return false,
            }
        }
        true
    };
    if !std::io::stdin().is_terminal() {
        for line in std::io::stdin().lock().lines() {
            if !show(session.feed(&line.context("cannot read stdin")?)) {
                break;
            }
        }
        show(session.finish());
        if failed {
            anyhow::bail!("some statements failed");
        }
        return Ok(());
    }
    let mut editor: Editor<ReplHelper, _> = Editor::new().context("cannot start line editing")?;
    editor.set_helper(Some(ReplHelper {
        vocabulary: session.vocabulary(),
    }));
    let history = history_file();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "memberdb {} — type \\help for examples, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let prompt = if session.continuing() {
            "      -> "
        } else {
            "memberdb> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !show(session.feed(&line)) {
                    break;
                }
                if let Some(helper) = editor.helper_mut() {
                    helper.vocabulary = session.vocabulary();
                }
            }
            Err(ReadlineError::Interrupted) => {
                session.buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("line editing failed"),
        }
    }
    show(session.finish());
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_keywords_and_names() {
        let vocabulary: Vec<String> = ["COUNT", "city", "claim_coupon", "'vip'", "'摄影爱好者'"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            complete(&vocabulary, "cou", 3),
            (0, vec!["count".to_string()])
        );
        assert_eq!(
            complete(&vocabulary, "COUNT DID cl", 12),
            (10, vec!["claim_coupon".to_string()])
        );
        assert_eq!(
            complete(&vocabulary, "COUNT TAG 'v", 12),
            (10, vec!["'vip'".to_string()])
        );
        assert_eq!(
            complete(&vocabulary, "COUNT TAG '摄", 14),
            (10, vec!["'摄影爱好者'".to_string()])
        );
        assert!(complete(&vocabulary, "COUNT ", 6).1.is_empty());
    }
}
