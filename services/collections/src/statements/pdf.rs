//! A statement rendered as PDF (US Letter, the standard Helvetica fonts, no embedded data):
//! one page for a typical account, more when its activity lines do not fit.

use medbill_domain::Money;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use super::{Statement, StatementLine};

const PAGE_WIDTH: f32 = 612.0;
const PAGE_HEIGHT: f32 = 792.0;
const MARGIN: f32 = 54.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
/// Characters of body text per line at 9 pt across the page (Helvetica averages about half an em).
const WRAP: usize = 110;
/// Characters of an activity description that fit its column.
const DESCRIPTION_WIDTH: usize = 52;

/// A rendered statement.
#[derive(Debug, Clone)]
pub struct RenderedPdf {
    /// The PDF file.
    pub bytes: Vec<u8>,
    /// Its page count.
    pub pages: u32,
}

/// One piece of text placed on a page.
struct Text {
    bold: bool,
    size: f32,
    x: f32,
    y: f32,
    text: String,
}

/// Lays text out top-down, starting a new page when the current one is full.
struct Layout {
    pages: Vec<Vec<Text>>,
    y: f32,
}

impl Layout {
    fn new() -> Self {
        Self {
            pages: vec![Vec::new()],
            y: PAGE_HEIGHT - MARGIN,
        }
    }

    /// Moves down by `height`, on a new page when it would run into the bottom margin.
    fn advance(&mut self, height: f32) {
        if self.y - height < MARGIN {
            self.pages.push(Vec::new());
            self.y = PAGE_HEIGHT - MARGIN;
        }
        self.y -= height;
    }

    fn put(&mut self, bold: bool, size: f32, x: f32, text: impl Into<String>) {
        let y = self.y;
        if let Some(page) = self.pages.last_mut() {
            page.push(Text {
                bold,
                size,
                x,
                y,
                text: text.into(),
            });
        }
    }

    fn line(&mut self, bold: bool, size: f32, text: impl Into<String>) {
        self.advance(size + 4.0);
        self.put(bold, size, MARGIN, text);
    }

    fn paragraph(&mut self, bold: bool, size: f32, text: &str) {
        for line in wrap(text, WRAP) {
            self.line(bold, size, line);
        }
    }
}

/// Splits `text` into lines of at most `width` characters at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn dollars(m: Money) -> String {
    if m.is_negative() {
        format!("-${}", m.abs())
    } else {
        format!("${m}")
    }
}

fn optional(m: Option<Money>) -> String {
    m.map(dollars).unwrap_or_default()
}

/// The text shown: the standard fonts' WinAnsi encoding covers ASCII safely; anything else is
/// shown as '?'.
fn encode(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

fn activity(layout: &mut Layout, line: &StatementLine) {
    let description = wrap(&line.description, DESCRIPTION_WIDTH);
    layout.advance(12.0);
    layout.put(false, 8.5, MARGIN, line.date.to_string());
    layout.put(
        false,
        8.5,
        MARGIN + 58.0,
        description.first().cloned().unwrap_or_default(),
    );
    layout.put(false, 8.5, 330.0, optional(line.charges));
    layout.put(false, 8.5, 390.0, optional(line.insurance_paid));
    layout.put(false, 8.5, 450.0, optional(line.insurance_adjustments));
    layout.put(false, 8.5, 510.0, dollars(line.amount));
    for more in description.iter().skip(1) {
        layout.advance(11.0);
        layout.put(false, 8.5, MARGIN + 58.0, more.clone());
    }
}

/// Lays the statement out in pages of placed text.
fn lay_out(facility: &str, s: &Statement) -> Vec<Vec<Text>> {
    let mut l = Layout::new();
    l.line(true, 16.0, facility);
    l.line(true, 12.0, "PATIENT STATEMENT");
    l.advance(6.0);
    l.line(false, 9.0, format!("Account: {}", s.account_id));
    l.line(
        false,
        9.0,
        format!(
            "Statement date: {}    Statement {}",
            s.statement_date, s.sequence
        ),
    );
    l.advance(8.0);
    l.line(true, 14.0, format!("Amount due: {}", dollars(s.amount_due)));
    l.line(true, 10.0, format!("Please pay by: {}", s.due_date));
    if s.minimum_due < s.amount_due {
        l.line(
            true,
            10.0,
            format!(
                "Payment plan installment due now: {}",
                dollars(s.minimum_due)
            ),
        );
    }
    l.advance(8.0);
    l.line(true, 10.0, "Summary");
    for (label, amount) in [
        ("Previous balance", s.previous_balance),
        ("New charges (your share after insurance)", s.new_charges),
        ("Payments and refunds", s.payments),
        ("Adjustments", s.adjustments),
        ("Balance", s.closing_balance),
    ] {
        l.advance(12.0);
        l.put(false, 9.0, MARGIN, label);
        l.put(false, 9.0, 330.0, dollars(amount));
    }
    l.advance(10.0);
    l.line(true, 10.0, "Activity since your last statement");
    l.advance(12.0);
    for (x, header) in [
        (MARGIN, "Date"),
        (MARGIN + 58.0, "Description"),
        (330.0, "Charges"),
        (390.0, "Ins. paid"),
        (450.0, "Adjusted"),
        (510.0, "Your amount"),
    ] {
        l.put(true, 8.5, x, header);
    }
    if s.lines.is_empty() {
        l.line(false, 8.5, "No new activity.");
    }
    for line in &s.lines {
        activity(&mut l, line);
    }
    l.advance(10.0);
    l.line(true, 10.0, "Your balance by age");
    l.line(
        false,
        9.0,
        format!(
            "0-30 days {}   31-60 days {}   61-90 days {}   91-120 days {}   over 120 days {}",
            dollars(s.aging.days_0_30),
            dollars(s.aging.days_31_60),
            dollars(s.aging.days_61_90),
            dollars(s.aging.days_91_120),
            dollars(s.aging.days_over_120)
        ),
    );
    if !s.dunning_message.is_empty() {
        l.advance(8.0);
        l.paragraph(true, 10.0, &s.dunning_message);
    }
    l.advance(8.0);
    l.line(true, 10.0, "Financial assistance");
    l.paragraph(false, 9.0, &s.financial_assistance_summary);
    l.advance(8.0);
    l.paragraph(false, 9.0, &s.contact_text);
    l.pages
}

/// Renders a statement as a PDF.
pub fn render(facility: &str, statement: &Statement) -> RenderedPdf {
    let pages = lay_out(facility, statement);
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    // Each page takes two ids: the page and its content stream.
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(5 + 2 * i32::try_from(i).unwrap_or(i32::MAX / 4)))
        .collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().copied())
        .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (texts, page_id) in pages.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree)
            .contents(content_id);
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        let mut content = Content::new();
        for t in texts {
            let bytes = encode(&t.text);
            content
                .begin_text()
                .set_font(if t.bold { BOLD } else { REGULAR }, t.size)
                .next_line(t.x, t.y)
                .show(Str(&bytes))
                .end_text();
        }
        pdf.stream(content_id, &content.finish());
    }
    RenderedPdf {
        bytes: pdf.finish(),
        pages: u32::try_from(pages.len()).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5), Vec::<String>::new());
        assert_eq!(encode("a\u{e9}b"), b"a?b".to_vec());
        assert_eq!(dollars(Money::from_minor_units(-150)), "-$1.50");
    }
}
