//! Reads the embedded code lists with the `csv` crate (RFC 4180).
//!
//! Fields are separated by commas; a field in double quotes may hold commas, line breaks and
//! doubled quotes (`""` for `"`). A line whose first character is `#` outside a quoted field is
//! a comment (the `# SOURCES:` and `# LEGAL:` headers). Blank lines are skipped. Records end at
//! `\n`, `\r\n` or a lone `\r`; a leading byte order mark is dropped.
//!
//! The `csv` crate reads malformed quoting leniently (a stray quote is kept as text, an unclosed
//! quote runs to the end of the file) without saying so, so each record is also checked against
//! its raw text: the shipped files must be well formed, and a broken edit must be reported with
//! its line rather than silently change a description.

/// One record with the 1-based line number it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// The records and comment lines of a file, plus any problems found while reading it.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub records: Vec<Record>,
    pub comments: Vec<String>,
    pub problems: Vec<String>,
}

/// Reads CSV text; never panics, and reports malformed quoting as a problem instead of failing.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut out = Parsed::default();
    let mut record = ::csv::StringRecord::new();
    loop {
        // The reader's position before a record is where the previous one ended: the comment
        // and blank lines it skipped lie between there and the record's first field.
        let before = reader.position().clone();
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                let line = e.position().map_or(before.line(), ::csv::Position::line);
                out.problems.push(format!("line {line}: {e}"));
                // Only an I/O error stops the reader, and reading from memory has none.
                if e.is_io_error() {
                    break;
                }
                continue;
            }
        };
        let start = offset(text, before.byte());
        let end = if more {
            offset(text, reader.position().byte())
        } else {
            text.len()
        };
        let span = text.get(start..end).unwrap_or_default();
        // The reader drops a byte order mark at the start of the file.
        let bom = if start == 0 && span.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        let skipped = bom + skip_comments_and_blank_lines(&span[bom..], &mut out.comments);
        if !more {
            break;
        }
        if skipped == span.len() {
            // A comment on the file's last line, without a line break, comes back as an empty
            // record; it has no text of its own.
            continue;
        }
        let line = usize::try_from(before.line())
            .unwrap_or(usize::MAX)
            .saturating_add(count_newlines(&span[..skipped]));
        let fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if let Err(problem) = check_quoting(&span[skipped..], &fields, line) {
            out.problems.push(problem);
        }
        out.records.push(Record { line, fields });
    }
    out
}

fn offset(text: &str, byte: u64) -> usize {
    usize::try_from(byte).map_or(text.len(), |b| b.min(text.len()))
}

fn count_newlines(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'\n').count()
}

/// Skips the line breaks and `#` comment lines that precede a record (as the reader does),
/// collecting the comments; returns the byte length skipped.
fn skip_comments_and_blank_lines(span: &str, comments: &mut Vec<String>) -> usize {
    let mut rest = span;
    loop {
        if let Some(after) = rest.strip_prefix(['\r', '\n']) {
            rest = after;
        } else if rest.starts_with('#') {
            let (comment, after) = rest.split_once('\n').unwrap_or((rest, ""));
            comments.push(comment.trim_end_matches('\r').to_owned());
            rest = after;
        } else {
            return span.len() - rest.len();
        }
    }
}

/// Checks that `raw` (a record's text up to and including its line break) is exactly `fields`
/// written with RFC 4180 quoting; names the line of the first field that is not.
fn check_quoting(raw: &str, fields: &[String], line: usize) -> Result<(), String> {
    let mut rest = raw;
    for (index, field) in fields.iter().enumerate() {
        let at = line + count_newlines(&raw[..raw.len() - rest.len()]);
        let bad = || {
            format!(
                "line {at}: field {} is badly quoted (quotes inside a field must be doubled and the whole field quoted)",
                index + 1
            )
        };
        if index > 0 {
            rest = rest.strip_prefix(',').ok_or_else(bad)?;
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            let escaped = field.replace('"', "\"\"");
            if quoted == escaped {
                return Err(format!(
                    "line {at}: quoted field is not closed before the end of the file"
                ));
            }
            rest = quoted
                .strip_prefix(escaped.as_str())
                .and_then(|r| r.strip_prefix('"'))
                .ok_or_else(bad)?;
        } else {
            if field.contains('"') {
                return Err(bad());
            }
            rest = rest.strip_prefix(field.as_str()).ok_or_else(bad)?;
        }
    }
    match rest {
        "" | "\n" | "\r" | "\r\n" => Ok(()),
        _ => Err(format!(
            "line {}: text after the last field (quotes inside a field must be doubled and the whole field quoted)",
            line + count_newlines(&raw[..raw.len() - rest.len()])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: &Parsed) -> Vec<Vec<&str>> {
        p.records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    fn lines(p: &Parsed) -> Vec<usize> {
        p.records.iter().map(|r| r.line).collect()
    }

    #[test]
    fn reads_quoted_fields_comments_and_crlf() {
        let text = "# SOURCES: x\r\n# LEGAL: y\r\ncode,description\r\n1,plain\r\n2,\"with, comma\"\r\n\r\n3,\"say \"\"hi\"\"\"\r\n4,\"two\nlines\",extra\n5,\n";
        let p = parse(text);
        assert_eq!(p.comments, vec!["# SOURCES: x", "# LEGAL: y"]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            fields(&p),
            vec![
                vec!["code", "description"],
                vec!["1", "plain"],
                vec!["2", "with, comma"],
                vec!["3", "say \"hi\""],
                vec!["4", "two\nlines", "extra"],
                vec!["5", ""],
            ]
        );
        assert_eq!(lines(&p), vec![3, 4, 5, 7, 8, 10]);
    }

    #[test]
    fn hash_inside_a_record_is_data() {
        let p = parse("a,b\n1,#not a comment\n");
        assert_eq!(
            fields(&p),
            vec![vec!["a", "b"], vec!["1", "#not a comment"]]
        );
    }

    #[test]
    fn reports_bad_quoting_without_panicking() {
        let p = parse("a,b\n1,\"open\n");
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(p.problems[0].contains("not closed"));
        let p = parse("a,b\n1,\"x\"y\n");
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        let p = parse("a,b\n1,x\"y\n");
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        // no final newline
        let p = parse("a,b\n1,2");
        assert_eq!(fields(&p), vec![vec!["a", "b"], vec!["1", "2"]]);
        assert!(parse("").records.is_empty());
        assert!(parse("\u{feff}a\n").records.len() == 1);
        let p = parse("\u{feff}# SOURCES: s\ncode,d\n");
        assert_eq!(fields(&p), vec![vec!["code", "d"]]);
        assert_eq!(p.comments, vec!["# SOURCES: s"]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn bad_quoting_names_the_line_it_is_on() {
        let p = parse("# c\ncode,description\n1,ok\n\n2,\"a\"b\n3,fine\n");
        assert_eq!(
            p.problems,
            vec![
                "line 5: field 2 is badly quoted (quotes inside a field must be doubled and the whole field quoted)"
            ]
        );
        // The record is still read, as the reader understood it.
        assert_eq!(fields(&p)[2], vec!["2", "ab"]);
        assert_eq!(lines(&p), vec![2, 3, 5, 6]);

        // A stray quote on the second line of a multi-line record names that line.
        let p = parse("a,b,c\n1,\"x\ny\",z\"q\n");
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(
            p.problems[0].starts_with("line 3: field 3"),
            "{:?}",
            p.problems
        );

        // An unclosed quote swallows the rest of the file; it is reported where it opens.
        let p = parse("a,b\n1,x\n2,\"never closed\n3,y\n");
        assert_eq!(
            p.problems,
            vec!["line 3: quoted field is not closed before the end of the file"]
        );
        assert_eq!(lines(&p), vec![1, 2, 3]);
    }

    #[test]
    fn crlf_quoted_commas_quotes_and_line_breaks() {
        let p = parse(
            "code,description\r\n\"A1\",\"one, two\"\r\nB2,\"he said \"\"no\"\"\"\r\nC3,\"multi\r\nline\"\r\nD4,\"\"\r\n",
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            fields(&p),
            vec![
                vec!["code", "description"],
                vec!["A1", "one, two"],
                vec!["B2", "he said \"no\""],
                vec!["C3", "multi\r\nline"],
                vec!["D4", ""],
            ]
        );
        assert_eq!(lines(&p), vec![1, 2, 3, 4, 6]);
    }

    #[test]
    fn comments_anywhere_between_records_are_collected() {
        let p = parse("# SOURCES: s\ncode,d\n# between\n1,x\n\n# LEGAL: l\n");
        assert_eq!(p.comments, vec!["# SOURCES: s", "# between", "# LEGAL: l"]);
        assert_eq!(fields(&p), vec![vec!["code", "d"], vec!["1", "x"]]);
        assert_eq!(lines(&p), vec![2, 4]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn records_of_different_lengths_are_kept_for_the_caller_to_judge() {
        let p = parse("code,description\n1,a,extra\n2\n");
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(
            fields(&p),
            vec![
                vec!["code", "description"],
                vec!["1", "a", "extra"],
                vec!["2"]
            ]
        );
    }
}
