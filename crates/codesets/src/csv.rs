//! A small RFC 4180 reader for the embedded code lists.
//!
//! Fields are separated by commas; a field in double quotes may hold commas, line breaks and
//! doubled quotes (`""` for `"`). A line whose first character is `#` outside a quoted field is
//! a comment (the `# SOURCES:` and `# LEGAL:` headers). Blank lines are skipped.

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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Parsed::default();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;

    while chars.peek().is_some() {
        // At the start of a record: comments and blank lines.
        match chars.peek() {
            Some('#') => {
                let mut comment = String::new();
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                    comment.push(c);
                }
                out.comments.push(comment.trim_end_matches('\r').to_owned());
                line += 1;
                continue;
            }
            Some('\n') => {
                chars.next();
                line += 1;
                continue;
            }
            Some('\r') => {
                chars.next();
                continue;
            }
            _ => {}
        }

        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut was_quoted = false;
        let mut after_closing_quote = false;
        loop {
            let Some(c) = chars.next() else {
                if in_quotes {
                    out.problems.push(format!(
                        "line {start_line}: quoted field is not closed before the end of the file"
                    ));
                }
                fields.push(std::mem::take(&mut field));
                break;
            };
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => {
                        in_quotes = false;
                        after_closing_quote = true;
                    }
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    other => field.push(other),
                }
                continue;
            }
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                    after_closing_quote = false;
                }
                '\n' => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '"' if field.is_empty() && !was_quoted => {
                    in_quotes = true;
                    was_quoted = true;
                }
                other => {
                    if after_closing_quote || other == '"' {
                        out.problems.push(format!(
                            "line {line}: unexpected {other:?} in a field (quotes inside a field must be doubled and the whole field quoted)"
                        ));
                        after_closing_quote = false;
                    }
                    field.push(other);
                }
            }
        }
        out.records.push(Record {
            line: start_line,
            fields,
        });
    }
    out
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
        let lines: Vec<usize> = p.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 7, 8, 10]);
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
    }
}
