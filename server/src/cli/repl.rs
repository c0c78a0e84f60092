//! `memberdb repl`: the analyst's prompt. Line editing and history (rustyline), multi-line
//! statements, completion of keywords and catalog names, `\timing`, `\format`, `\help`.
//! When stdin is not a terminal it reads statements from stdin, so it can be scripted.

use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
  SHOW ATTRIBUTES | TAGS | EVENTS | GROUPS | LOADS
  COUNT DID purchase IN LAST 30 DAYS AS OF '2026-11-01T00:00:00Z'

Discovery:
  SHOW EVENT claim_coupon            its properties, their types and top values
  SHOW ATTRIBUTE city                its top values
  BREAKDOWN DID claim_coupon BY coupon_id OF claim_coupon
  EXPORT TAG 'vip' AND city = 'Shanghai' SHOW * TO 'audience.csv'

Commands:
  \now [TIME | clock]   show or pin *now* (clock: the wall clock again)
  \timing [on | off]    statement times in µs
  \format table|json|csv
  \o [FILE]             outputs to FILE (alone: back to the screen)
  \i FILE               run the statements in FILE
  \help, \q (or help, exit, quit)
Tab completes keywords, names, and values after attr = '"#;

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
    "EVENT",
    "ATTRIBUTE",
    "EXPORT",
    "TO",
    "ALTER",
    "TYPE",
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
    db: Arc<Database>,
    /// What the database is, for the banner.
    label: String,
    now: Option<Timestamp>,
    format: Format,
    timing: bool,
    buffer: String,
    dirty: bool,
    /// `\o FILE`: where outputs go instead of stdout.
    output: Option<(String, std::fs::File)>,
    /// `\i` files being read, innermost last (a file may not include itself).
    including: Vec<PathBuf>,
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

/// `\i` files nested at most this deep.
const MAX_INCLUDE_DEPTH: usize = 8;

impl Session {
    pub(crate) fn new(db: Database, label: String, now: Option<Timestamp>, format: Format) -> Self {
        Session {
            db: Arc::new(db),
            label,
            now,
            format,
            timing: false,
            buffer: String::new(),
            dirty: false,
            output: None,
            including: Vec::new(),
        }
    }

    /// The first lines: version, database, *now*.
    pub(crate) fn banner(&self) -> String {
        format!(
            "memberdb {} — {}: {} members, {} events\n{}\ntype \\help for examples and \
             commands, \\q to quit",
            env!("CARGO_PKG_VERSION"),
            self.label,
            self.db.member_count(),
            self.db.event_count(),
            self.now_text()
        )
    }

    fn now_text(&self) -> String {
        match self.now {
            Some(t) => format!("now is pinned at {t} (\\now clock follows the wall clock)"),
            None => format!(
                "now is the wall clock: {} (\\now TIME pins it)",
                Timestamp::now()
            ),
        }
    }

    /// True while a statement spans several lines.
    pub(crate) fn continuing(&self) -> bool {
        !self.buffer.trim().is_empty()
    }

    /// Feeds one line; returns what to print (outputs go to the `\o` file when there is
    /// one).
    pub(crate) fn feed(&mut self, line: &str) -> Vec<Reply> {
        let replies = self.feed_line(line);
        let Some((name, file)) = &mut self.output else {
            return replies;
        };
        let mut shown = Vec::with_capacity(replies.len());
        for reply in replies {
            match reply {
                Reply::Out(text) => {
                    if let Err(e) = writeln!(file, "{text}") {
                        shown.push(Reply::Err(format!("cannot write to {name}: {e}")));
                    }
                }
                other => shown.push(other),
            }
        }
        shown
    }

    fn feed_line(&mut self, line: &str) -> Vec<Reply> {
        let trimmed = line.trim();
        if !self.continuing() && trimmed.starts_with('\\') {
            return self.command(trimmed);
        }
        // As in psql: `exit`, `quit` and `help` alone on a line need no backslash (none of
        // them begins a statement of the language).
        if !self.continuing() {
            match trimmed.trim_end_matches(';').to_ascii_lowercase().as_str() {
                "exit" | "quit" => return vec![Reply::Quit],
                "help" => return self.command("\\help"),
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
                    match super::run_statement(&self.db, statement, self.now, None) {
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

    fn command(&mut self, command: &str) -> Vec<Reply> {
        let (name, argument) = match command.split_once(char::is_whitespace) {
            Some((name, rest)) => (name, Some(rest.trim()).filter(|r| !r.is_empty())),
            None => (command, None),
        };
        let one = |reply: Reply| vec![reply];
        match (name, argument) {
            ("\\q" | "\\quit", _) => one(Reply::Quit),
            ("\\help" | "\\h" | "\\?", _) => one(Reply::Out(HELP.to_string())),
            ("\\timing", setting) => {
                self.timing = match setting.map(str::to_ascii_lowercase).as_deref() {
                    None => !self.timing,
                    Some("on") => true,
                    Some("off") => false,
                    Some(other) => {
                        return one(Reply::Err(format!(
                            "\\timing takes on or off, not '{other}'"
                        )));
                    }
                };
                let state = if self.timing { "on" } else { "off" };
                one(Reply::Out(format!("timing is {state}")))
            }
            ("\\format", Some(f)) => match <Format as clap::ValueEnum>::from_str(f, true) {
                Ok(format) => {
                    self.format = format;
                    one(Reply::Out(format!("format is {f}")))
                }
                Err(_) => one(Reply::Err(format!(
                    "unknown format '{f}': use table, json or csv"
                ))),
            },
            ("\\format", None) => one(Reply::Err("\\format needs table, json or csv".into())),
            ("\\now", None) => one(Reply::Out(self.now_text())),
            ("\\now", Some("clock")) => {
                self.now = None;
                one(Reply::Out(self.now_text()))
            }
            ("\\now", Some(time)) => match Timestamp::parse(time) {
                Some(t) => {
                    self.now = Some(t);
                    one(Reply::Out(self.now_text()))
                }
                None => one(Reply::Err(format!(
                    "\\now '{time}' is not a time: write e.g. \\now 2026-11-01T00:00:00Z, or \
                     \\now clock for the wall clock"
                ))),
            },
            ("\\o", None) => match self.output.take() {
                Some((name, _)) => one(Reply::Note(format!(
                    "outputs go to stdout again ({name} closed)"
                ))),
                None => one(Reply::Note("outputs go to stdout".into())),
            },
            ("\\o", Some(file)) => match std::fs::File::create(file) {
                Ok(f) => {
                    self.output = Some((file.to_string(), f));
                    one(Reply::Note(format!(
                        "outputs go to {file} (\\o alone: back to stdout)"
                    )))
                }
                Err(e) => one(Reply::Err(format!("cannot write {file}: {e}"))),
            },
            ("\\i", Some(file)) => self.include(Path::new(file)),
            ("\\i", None) => one(Reply::Err("\\i needs a file of statements".into())),
            (other, _) => one(Reply::Err(format!("unknown command {other}; try \\help"))),
        }
    }

    /// `\i FILE`: the file's lines fed as if typed.
    fn include(&mut self, file: &Path) -> Vec<Reply> {
        if self.including.len() >= MAX_INCLUDE_DEPTH || self.including.iter().any(|f| f == file) {
            return vec![Reply::Err(format!(
                "\\i {}: files include each other (or nest deeper than {MAX_INCLUDE_DEPTH})",
                file.display()
            ))];
        }
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => return vec![Reply::Err(format!("cannot read {}: {e}", file.display()))],
        };
        self.including.push(file.to_path_buf());
        let mut replies = Vec::new();
        for line in text.lines() {
            let out = self.feed_line(line);
            let stop = out.iter().any(|r| matches!(r, Reply::Quit | Reply::Err(_)));
            replies.extend(out);
            if stop {
                break;
            }
        }
        if self.continuing() {
            let rest = std::mem::take(&mut self.buffer);
            replies.extend(self.feed_line(&format!("{rest};")));
        }
        self.including.pop();
        replies
    }

    /// Names to complete: keywords, attributes, events, properties, groups, quoted tags.
    fn vocabulary(&self) -> Vocabulary {
        let attributes: Vec<String> = self.db.attributes().into_iter().map(|a| a.name).collect();
        let mut names = attributes.clone();
        names.extend(self.db.event_types().into_iter().map(|(e, _)| e));
        names.extend(self.db.event_properties().into_iter().map(|(p, _)| p));
        names.extend(self.db.groups().into_iter().map(|g| g.name));
        names.extend(
            self.db
                .tags()
                .into_iter()
                .map(|(t, _)| format!("'{}'", t.replace('\'', "''"))),
        );
        Vocabulary {
            attributes,
            names,
            db: Some(self.db.clone()),
        }
    }
}

/// What the REPL completes from.
#[derive(Default)]
pub(crate) struct Vocabulary {
    /// Attribute names (after `BY`).
    attributes: Vec<String>,
    /// Every other name: attributes, events, properties, groups, quoted tags.
    names: Vec<String>,
    /// For the values of a text attribute, read when asked for.
    db: Option<Arc<Database>>,
}

/// Values offered after `attr = '` at most.
const MAX_VALUE_COMPLETIONS: usize = 50;

/// The attribute whose value is being typed: `city = 'Sha`, `city IN ('Beijing', 'Sha`.
fn value_context(before: &str) -> Option<(&str, &str)> {
    // Inside an open quote: an odd number of quotes before the cursor.
    if before.matches('\'').count().is_multiple_of(2) {
        return None;
    }
    let quote = before.rfind('\'')?;
    let typed = &before[quote + 1..];
    let mut head = before[..quote].trim_end();
    // Earlier values of an IN list.
    while let Some(rest) = head.strip_suffix(',') {
        let rest = rest.trim_end().strip_suffix('\'')?;
        let open = rest.rfind('\'')?;
        head = rest[..open].trim_end();
    }
    let head = head
        .strip_suffix('(')
        .map(|h| h.trim_end())
        .and_then(|h| {
            let upper = h.to_ascii_uppercase();
            upper.ends_with(" IN").then(|| h[..h.len() - 2].trim_end())
        })
        .or_else(|| {
            ["!=", "<>", "="]
                .iter()
                .find_map(|op| head.strip_suffix(op))
                .map(str::trim_end)
        })?;
    let start = head
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let attribute = &head[start..];
    (!attribute.is_empty()).then_some((attribute, typed))
}

/// Completion of the word before the cursor: a value of the attribute compared with, an
/// attribute after `BY`, else a keyword (with a space after it) or a name.
pub(crate) fn complete(vocabulary: &Vocabulary, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    if let Some((attribute, typed)) = value_context(before) {
        let Some(db) = &vocabulary.db else {
            return (pos, Vec::new());
        };
        let values =
            db.as_of(Timestamp::now())
                .string_values(attribute, typed, MAX_VALUE_COMPLETIONS);
        let start = pos - typed.len();
        let hits = values
            .into_iter()
            .map(|v| format!("{}'", v.replace('\'', "''")))
            .collect();
        return (start, hits);
    }
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '\''))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    if word.is_empty() {
        return (pos, Vec::new());
    }
    let previous = before[..start]
        .split_whitespace()
        .next_back()
        .unwrap_or("")
        .to_ascii_uppercase();
    let lower = word.to_lowercase();
    let matching = |w: &&String| w.to_lowercase().starts_with(&lower);
    let mut hits: Vec<String> = if previous == "BY" {
        vocabulary
            .attributes
            .iter()
            .filter(matching)
            .cloned()
            .collect()
    } else {
        let keywords = KEYWORDS
            .iter()
            .filter(|k| k.to_lowercase().starts_with(&lower))
            .map(|k| {
                let k = if word.chars().all(|c| c.is_lowercase()) {
                    k.to_lowercase()
                } else {
                    k.to_string()
                };
                format!("{k} ")
            });
        let names = vocabulary.names.iter().filter(matching).cloned();
        keywords.chain(names).collect()
    };
    hits.sort();
    hits.dedup();
    (start, hits)
}

struct ReplHelper {
    vocabulary: Vocabulary,
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
                    display: h.trim_end().to_string(),
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
    let label = match &args.db {
        Some(dir) => format!("database {}", dir.display()),
        None => "the read-only sample database".to_string(),
    };
    let mut session = Session::new(db, label, now, args.format);
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
    println!("{}", session.banner());
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

    fn vocabulary(db: Option<Database>) -> Vocabulary {
        let names: Vec<String> = ["city", "claim_coupon", "'vip'", "'摄影爱好者'"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        Vocabulary {
            attributes: vec!["city".into(), "level".into()],
            names,
            db: db.map(Arc::new),
        }
    }

    #[test]
    fn completes_keywords_with_a_space_and_names_as_they_are() {
        let v = vocabulary(None);
        assert_eq!(complete(&v, "cou", 3), (0, vec!["count ".to_string()]));
        assert_eq!(
            complete(&v, "COUNT DID cl", 12),
            (10, vec!["claim_coupon".to_string()])
        );
        assert_eq!(
            complete(&v, "COUNT TAG 'v", 12),
            (10, vec!["'vip'".to_string()])
        );
        assert_eq!(
            complete(&v, "COUNT TAG '摄", 14),
            (10, vec!["'摄影爱好者'".to_string()])
        );
        assert!(complete(&v, "COUNT ", 6).1.is_empty());
        // After BY: attributes only.
        let line = "BREAKDOWN ALL BY c";
        assert_eq!(
            complete(&v, line, line.len()),
            (17, vec!["city".to_string()])
        );
    }

    #[test]
    fn completes_values_of_the_attribute_compared_with() {
        let db = Database::in_memory();
        for (id, city) in [("M1", "Shanghai"), ("M2", "Shenzhen"), ("M3", "Beijing")] {
            db.upsert_member(id, &[("city", Some(city.into()))])
                .unwrap();
        }
        let v = vocabulary(Some(db));
        for (line, start, hits) in [
            ("COUNT city = 'Sh", 14, vec!["Shanghai'", "Shenzhen'"]),
            ("COUNT city = 'sha", 14, vec!["Shanghai'"]),
            ("COUNT city IN ('Beijing', 'She", 27, vec!["Shenzhen'"]),
            (
                "COUNT TAG 'vip' AND city != '",
                29,
                vec!["Beijing'", "Shanghai'", "Shenzhen'"],
            ),
        ] {
            let expected: Vec<String> = hits.iter().map(|h| h.to_string()).collect();
            assert_eq!(complete(&v, line, line.len()), (start, expected), "{line}");
        }
        assert_eq!(value_context("COUNT TAG 'vip' AND city = 'x' AND "), None);
    }

    #[test]
    fn now_output_file_and_included_statements() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::in_memory();
        db.upsert_member("M1", &[("city", Some("Shanghai".into()))])
            .unwrap();
        let mut session = Session::new(db, "test".into(), None, Format::Csv);
        let text = |replies: Vec<Reply>| -> Vec<String> {
            replies
                .into_iter()
                .map(|r| match r {
                    Reply::Out(t) | Reply::Note(t) | Reply::Err(t) => t,
                    Reply::Quit => "quit".into(),
                })
                .collect()
        };
        assert!(session.banner().contains("test: 1 members"));
        let pinned = text(session.feed("\\now 2026-11-01T00:00:00Z"));
        assert!(
            pinned[0].contains("pinned at 2026-11-01T00:00:00Z"),
            "{pinned:?}"
        );
        assert_eq!(session.now, Timestamp::parse("2026-11-01T00:00:00Z"));
        assert!(text(session.feed("\\now yesterday"))[0].contains("not a time"));
        session.feed("\\now clock");
        assert_eq!(session.now, None);
        assert_eq!(text(session.feed("\\timing on")), vec!["timing is on"]);
        assert_eq!(text(session.feed("\\timing off")), vec!["timing is off"]);

        let script = dir.path().join("s.mql");
        std::fs::write(&script, "COUNT city = 'Shanghai';\nCOUNT\n  ALL\n").unwrap();
        let out = dir.path().join("out.csv");
        session.feed(&format!("\\o {}", out.display()));
        let shown = text(session.feed(&format!("\\i {}", script.display())));
        assert!(shown.is_empty(), "outputs went to the file: {shown:?}");
        session.feed("\\o");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "count\n1\ncount\n1\n"
        );
        std::fs::write(&script, format!("\\i {}\n", script.display())).unwrap();
        let looped = text(session.feed(&format!("\\i {}", script.display())));
        assert!(
            looped.iter().any(|l| l.contains("include each other")),
            "{looped:?}"
        );
    }
}
