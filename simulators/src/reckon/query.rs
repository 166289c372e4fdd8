//! Reckon One API v2 list query parameters — `filter`, `orderby` and `select` —
//! evaluated over records held as camelCase `serde_json::Value` objects.
//!
//! The documented syntax is implemented with a hand-written tokenizer and a
//! recursive-descent parser. Where Reckon's help articles are silent, this
//! module makes the following choices:
//!
//! * Field names match case-insensitively (an exact-case key wins if both
//!   exist); unknown fields evaluate as `null` rather than being an error.
//! * A path that crosses an array — or ends on one — is compared element by
//!   element and the comparison holds if ANY element satisfies it. That also
//!   applies to `ne`: `emails.address ne 'x'` holds if some address differs.
//!   An empty array behaves like `null`.
//! * `null eq null` holds, `null ne 'x'` holds, and ordering comparisons
//!   (`gt`/`ge`/`lt`/`le`) between `null` and a non-null value never hold.
//! * Numbers are compared as exact decimals (`110` equals `110.0`), never as
//!   `f64`. A string that is a plain decimal compares numerically against a
//!   number (`reference eq 1042` matches `"reference": "1042"`).
//! * Two strings that both parse as dates (`YYYY-MM-DD`) or date-times
//!   (RFC 3339, or `YYYY-MM-DDTHH:MM:SS` without offset, taken as UTC) compare
//!   chronologically. A date compared with a date-time uses the date-time's
//!   calendar date as written (in its own offset), so
//!   `"2020-03-31T12:00:00Z" le '2020-03-31'` holds and
//!   `"2020-03-31T12:00:00Z" gt '2020-03-31'` does not. Other strings compare
//!   case-sensitively by code point.
//! * Unquoted date and date-time literals (`invoiceDate ge 2020-01-01`) are
//!   accepted as if they were quoted.
//! * Keywords and operators (`and`, `EQ`, `Contains`…) are case-insensitive.
//! * A bare operand is a predicate that holds when it is `true`
//!   (`filter=isActive`, `not isArchived`).
//! * `anyOf` is not supported.
//! * `orderby` sorts `null`/missing first ascending (so last descending),
//!   then booleans, numbers, dates/date-times (by instant; a bare date is
//!   midnight UTC), other strings (case-insensitively, ties broken
//!   case-sensitively) and finally objects. A path that fans out across an
//!   array sorts by its first element.
//! * `select` output keeps the record's own key order and casing; a selected
//!   path that doesn't exist is simply absent, and selecting through an array
//!   projects each element. An empty path list returns the record unchanged.

use std::cmp::Ordering;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};
use serde_json::{Map, Value};

/// A malformed query parameter. The message names the offending token and its
/// 1-based character position so it can go straight into a 400 response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

impl QueryError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Field lookup
// ---------------------------------------------------------------------------

/// Resolves a dotted path against a record. Segments match keys
/// case-insensitively and arrays met along the way fan out, so the result
/// holds one entry per element reached. A final array is returned as-is.
pub fn lookup<'a>(record: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![record];
    if path.is_empty() {
        return current;
    }
    for segment in path.split('.') {
        let mut next = Vec::new();
        for value in current {
            descend(value, segment, &mut next);
        }
        current = next;
    }
    current
}

fn descend<'a>(value: &'a Value, segment: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                descend(item, segment, out);
            }
        }
        Value::Object(map) => {
            if let Some(child) = field_ignoring_case(map, segment) {
                out.push(child);
            }
        }
        _ => {}
    }
}

fn field_ignoring_case<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn validate_path(path: &str) -> Result<(), QueryError> {
    for segment in path.split('.') {
        if segment.is_empty() {
            return Err(QueryError::new(format!(
                "invalid field path '{path}': empty segment"
            )));
        }
        if let Some(bad) = segment.chars().find(|c| !is_path_char(*c)) {
            return Err(QueryError::new(format!(
                "invalid field path '{path}': unexpected character '{bad}'"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Exact decimals
// ---------------------------------------------------------------------------

/// An exact decimal: `0.d1 d2 d3… × 10^exponent`, normalised so that equal
/// values have equal fields (no leading or trailing zero digits; zero has no
/// digits and is never negative). This keeps money comparisons exact without
/// going through `f64`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// Parses `[-+]digits[.digits][e[-+]digits]`, which covers both filter
    /// literals and serde_json's rendering of numbers (e.g. `110.0`, `1e21`).
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent_text) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
            None => (unsigned, None),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
            return None;
        }
        let shift = match exponent_text {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
                // Bounded so the exponent arithmetic below can't overflow.
                if digits.is_empty() || digits.len() > 6 || !all_digits(digits) {
                    return None;
                }
                e.parse::<i64>().ok()?
            }
        };
        let mut digits: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .collect();
        let mut exponent = int_part.len() as i64 + shift;
        let leading_zeros = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading_zeros);
        exponent -= leading_zeros as i64;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        Some(Decimal {
            negative,
            digits,
            exponent,
        })
    }

    fn from_i64(n: i64) -> Decimal {
        Decimal::parse(&n.to_string()).expect("an integer's decimal rendering always parses")
    }

    /// The value as an `i64`, if it is a whole number that fits.
    fn to_i64(&self) -> Option<i64> {
        if self.digits.is_empty() {
            return Some(0);
        }
        if self.exponent < self.digits.len() as i64 || self.exponent > 18 {
            return None;
        }
        let magnitude = (0..self.exponent as usize).fold(0i64, |n, i| {
            n * 10 + i64::from(*self.digits.get(i).unwrap_or(&0))
        });
        Some(if self.negative { -magnitude } else { magnitude })
    }

    fn signum(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let (sign, other_sign) = (self.signum(), other.signum());
        if sign != other_sign || sign == 0 {
            return sign.cmp(&other_sign);
        }
        // Same sign, both non-zero: a larger exponent means a larger magnitude;
        // with equal exponents the digit strings compare lexicographically
        // (a shorter prefix is smaller because trailing zeros were stripped).
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits));
        if sign < 0 {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum DateLike {
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
}

impl DateLike {
    fn parse(text: &str) -> Option<DateLike> {
        // Cheap shape check first: most strings are not dates.
        let bytes = text.as_bytes();
        if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        if bytes.len() == 10 {
            return NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(DateLike::Date);
        }
        if let Ok(date_time) = DateTime::parse_from_rfc3339(text) {
            return Some(DateLike::DateTime(date_time));
        }
        // Reckon often returns date-times without an offset; treat them as UTC.
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|naive| DateLike::DateTime(naive.and_utc().fixed_offset()))
    }

    /// The calendar date as written (in the value's own offset).
    fn date(&self) -> NaiveDate {
        match self {
            DateLike::Date(date) => *date,
            DateLike::DateTime(date_time) => date_time.date_naive(),
        }
    }

    /// A point on the UTC timeline, for sorting; a bare date is midnight UTC.
    fn instant_utc(&self) -> NaiveDateTime {
        match self {
            DateLike::Date(date) => date.and_time(chrono::NaiveTime::MIN),
            DateLike::DateTime(date_time) => date_time.naive_utc(),
        }
    }

    /// Date-times compare as instants; if either side is a bare date only the
    /// calendar dates are compared (see the module docs).
    fn compare(&self, other: &DateLike) -> Ordering {
        match (self, other) {
            (DateLike::DateTime(a), DateLike::DateTime(b)) => a.cmp(b),
            _ => self.date().cmp(&other.date()),
        }
    }
}

// ---------------------------------------------------------------------------
// Scalars: the values filter expressions operate on
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    /// `text` keeps the original rendering for the string functions.
    Number {
        value: Decimal,
        text: String,
    },
    Text(String),
    List(Vec<Scalar>),
    /// Objects only take part in `eq null` / `ne null`, so their contents are
    /// not kept.
    Object,
}

impl Scalar {
    fn from_json(value: &Value) -> Scalar {
        match value {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::number_from_text(n.to_string()),
            Value::String(s) => Scalar::Text(s.clone()),
            Value::Array(items) => Scalar::List(items.iter().map(Scalar::from_json).collect()),
            Value::Object(_) => Scalar::Object,
        }
    }

    fn number_from_text(text: String) -> Scalar {
        match Decimal::parse(&text) {
            Some(value) => Scalar::Number { value, text },
            None => Scalar::Text(text),
        }
    }

    fn integer(n: i64) -> Scalar {
        Scalar::Number {
            value: Decimal::from_i64(n),
            text: n.to_string(),
        }
    }

    fn as_text(&self) -> Option<&str> {
        match self {
            Scalar::Text(s) => Some(s),
            Scalar::Number { text, .. } => Some(text),
            _ => None,
        }
    }

    fn as_integer(&self) -> Option<i64> {
        match self {
            Scalar::Number { value, .. } => value.to_i64(),
            _ => None,
        }
    }
}

/// Expands lists into their elements so comparisons can apply "any element"
/// semantics. Nothing at all (an empty array) counts as a single `null`.
fn flatten(values: Vec<Scalar>) -> Vec<Scalar> {
    fn push_flat(value: Scalar, out: &mut Vec<Scalar>) {
        match value {
            Scalar::List(items) => items.into_iter().for_each(|item| push_flat(item, out)),
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    values
        .into_iter()
        .for_each(|value| push_flat(value, &mut out));
    if out.is_empty() {
        out.push(Scalar::Null);
    }
    out
}

/// `None` means the two values are not comparable (e.g. `null` vs `'x'`,
/// a boolean vs a number); only `ne` holds for such pairs.
fn compare_scalars(left: &Scalar, right: &Scalar) -> Option<Ordering> {
    use Scalar::{Bool, Null, Number, Text};
    match (left, right) {
        (Null, Null) => Some(Ordering::Equal),
        (Bool(a), Bool(b)) => Some(a.cmp(b)),
        (Number { value: a, .. }, Number { value: b, .. }) => Some(a.cmp(b)),
        (Number { value, .. }, Text(text)) => Decimal::parse(text).map(|d| value.cmp(&d)),
        (Text(text), Number { value, .. }) => Decimal::parse(text).map(|d| d.cmp(value)),
        (Text(a), Text(b)) => match (DateLike::parse(a), DateLike::parse(b)) {
            (Some(date_a), Some(date_b)) => Some(date_a.compare(&date_b)),
            _ => Some(a.cmp(b)),
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// A bare word: a field path, keyword, operator or function name.
    Word(String),
    Str(String),
    Number(String),
    LParen,
    RParen,
    Comma,
    /// Symbolic operators such as `=` or `<=`, kept only so the parser can
    /// reject them with a helpful "unknown operator" message.
    Symbol(String),
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    /// 1-based character position in the input.
    pos: usize,
}

impl Token {
    fn describe(&self) -> String {
        match &self.kind {
            TokenKind::Word(w) => format!("'{w}'"),
            TokenKind::Str(s) => format!("string '{s}'"),
            TokenKind::Number(n) => format!("number {n}"),
            TokenKind::LParen => "'('".to_string(),
            TokenKind::RParen => "')'".to_string(),
            TokenKind::Comma => "','".to_string(),
            TokenKind::Symbol(s) => format!("'{s}'"),
        }
    }

    fn is_word(&self, keyword: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let starts_number =
            c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        let kind = if c == '(' {
            i += 1;
            TokenKind::LParen
        } else if c == ')' {
            i += 1;
            TokenKind::RParen
        } else if c == ',' {
            i += 1;
            TokenKind::Comma
        } else if c == '\'' || c == '"' {
            let (text, next) = lex_string(&chars, i)?;
            i = next;
            TokenKind::Str(text)
        } else if starts_number {
            // Take the whole run (digits, '.', '-', ':', '+', letters) so that
            // unquoted dates like 2020-03-31T10:00:00+10:00 lex as one token.
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '+' | '-'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if is_number_literal(&word) {
                TokenKind::Number(word)
            } else if DateLike::parse(&word).is_some() {
                TokenKind::Str(word)
            } else {
                return Err(QueryError::new(format!(
                    "invalid number '{word}' at position {pos}"
                )));
            }
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while chars.get(i).is_some_and(|c| is_path_char(*c) || *c == '.') {
                i += 1;
            }
            TokenKind::Word(chars[start..i].iter().collect())
        } else if matches!(c, '=' | '<' | '>' | '!' | '&' | '|') {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| matches!(c, '=' | '<' | '>' | '!' | '&' | '|'))
            {
                i += 1;
            }
            TokenKind::Symbol(chars[start..i].iter().collect())
        } else {
            return Err(QueryError::new(format!(
                "unexpected character '{c}' at position {pos}"
            )));
        };
        tokens.push(Token { kind, pos });
    }
    Ok(tokens)
}

/// Reads a string literal opened by `chars[start]` (either quote kind); a
/// doubled quote inside is an escaped quote. Returns the text and the index
/// just past the closing quote.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let quote = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(QueryError::new(format!(
                    "unterminated string literal starting at position {}",
                    start + 1
                )));
            }
            Some(&c) if c == quote => {
                if chars.get(i + 1) == Some(&quote) {
                    text.push(quote);
                    i += 2;
                } else {
                    return Ok((text, i + 1));
                }
            }
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// `-?digits(.digits)?([eE][+-]?digits)?`
fn is_number_literal(word: &str) -> bool {
    let unsigned = word.strip_prefix('-').unwrap_or(word);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int_part, frac_part)) => digits(int_part) && digits(frac_part),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

// ---------------------------------------------------------------------------
// Filter syntax tree
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn from_word(word: &str) -> Option<CmpOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            _ => return None,
        })
    }

    fn holds(self, ordering: Option<Ordering>) -> bool {
        use Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => ordering == Some(Equal),
            CmpOp::Ne => ordering != Some(Equal),
            CmpOp::Gt => ordering == Some(Greater),
            CmpOp::Ge => matches!(ordering, Some(Greater | Equal)),
            CmpOp::Lt => ordering == Some(Less),
            CmpOp::Le => matches!(ordering, Some(Less | Equal)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Function {
    ToLower,
    ToUpper,
    Trim,
    Length,
    Substring,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Contains,
    StartsWith,
    EndsWith,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name.to_ascii_lowercase().as_str() {
            "tolower" => Function::ToLower,
            "toupper" => Function::ToUpper,
            "trim" => Function::Trim,
            "length" => Function::Length,
            "substring" => Function::Substring,
            "year" => Function::Year,
            "month" => Function::Month,
            "day" => Function::Day,
            "hour" => Function::Hour,
            "minute" => Function::Minute,
            "second" => Function::Second,
            "contains" => Function::Contains,
            "startswith" => Function::StartsWith,
            "endswith" => Function::EndsWith,
            _ => return None,
        })
    }

    fn arity(self) -> (usize, usize) {
        match self {
            Function::Substring => (2, 3),
            Function::Contains | Function::StartsWith | Function::EndsWith => (2, 2),
            _ => (1, 1),
        }
    }

    fn is_text_match(self) -> bool {
        matches!(
            self,
            Function::Contains | Function::StartsWith | Function::EndsWith
        )
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Scalar),
    Field(String),
    Call(Function, Vec<Operand>),
}

#[derive(Debug, Clone)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Operand, CmpOp, Operand),
    In(Operand, Vec<Scalar>),
    /// A bare operand used as a predicate; holds if any value is `true`.
    /// Infix `x contains y` is parsed into this wrapping a `contains` call.
    Truthy(Operand),
}

/// Words that can never be a field name in operand position, so
/// `name eq and` reports a missing value instead of looking up field "and".
const RESERVED_WORDS: [&str; 10] = ["and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in"];

const OPERATOR_LIST: &str = "eq, ne, gt, ge, lt, le, contains, startswith, endswith, in";

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_is(&self, kind: &TokenKind) -> bool {
        self.peek().is_some_and(|t| &t.kind == kind)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        if token.is_some() {
            self.next += 1;
        }
        token
    }

    fn eat_word(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|t| t.is_word(keyword)) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    /// Describes what came before the cursor, for "… ended after X" messages.
    fn after_previous(&self) -> String {
        match self.next.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(token) => format!("after {} at position {}", token.describe(), token.pos),
            None => "at the start".to_string(),
        }
    }

    // or_expr := and_expr ('or' and_expr)*
    fn parse_or(&mut self) -> Result<Expr, QueryError> {
        let mut expr = self.parse_and()?;
        while self.eat_word("or") {
            let right = self.parse_and()?;
            expr = Expr::Or(Box::new(expr), Box::new(right));
        }
        Ok(expr)
    }

    // and_expr := unary ('and' unary)*   — binds tighter than `or`
    fn parse_and(&mut self) -> Result<Expr, QueryError> {
        let mut expr = self.parse_unary()?;
        while self.eat_word("and") {
            let right = self.parse_unary()?;
            expr = Expr::And(Box::new(expr), Box::new(right));
        }
        Ok(expr)
    }

    // unary := 'not' unary | primary
    fn parse_unary(&mut self) -> Result<Expr, QueryError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.parse_unary()?)));
        }
        self.parse_primary()
    }

    // primary := '(' or_expr ')' | predicate
    fn parse_primary(&mut self) -> Result<Expr, QueryError> {
        if !self.peek_is(&TokenKind::LParen) {
            return self.parse_predicate();
        }
        let open = self.advance().expect("peeked '('");
        let expr = self.parse_or()?;
        match self.advance() {
            Some(Token {
                kind: TokenKind::RParen,
                ..
            }) => Ok(expr),
            Some(other) => Err(QueryError::new(format!(
                "expected ')' to close '(' at position {} but found {} at position {}",
                open.pos,
                other.describe(),
                other.pos
            ))),
            None => Err(QueryError::new(format!(
                "missing ')' to close '(' at position {}",
                open.pos
            ))),
        }
    }

    // predicate := operand [ cmp_op operand | text_op operand | 'in' list ]
    fn parse_predicate(&mut self) -> Result<Expr, QueryError> {
        let left = self.parse_operand()?;
        let Some(token) = self.peek().cloned() else {
            return Ok(Expr::Truthy(left));
        };
        match &token.kind {
            TokenKind::Word(word) => {
                if let Some(op) = CmpOp::from_word(word) {
                    self.next += 1;
                    let right = self.parse_operand()?;
                    Ok(Expr::Compare(left, op, right))
                } else if let Some(function) =
                    Function::from_name(word).filter(|f| f.is_text_match())
                {
                    self.next += 1;
                    let right = self.parse_operand()?;
                    Ok(Expr::Truthy(Operand::Call(function, vec![left, right])))
                } else if word.eq_ignore_ascii_case("in") {
                    self.next += 1;
                    Ok(Expr::In(left, self.parse_in_list()?))
                } else if token.is_word("and") || token.is_word("or") {
                    Ok(Expr::Truthy(left))
                } else {
                    Err(unknown_operator(&token))
                }
            }
            TokenKind::RParen => Ok(Expr::Truthy(left)),
            TokenKind::Symbol(_) => Err(unknown_operator(&token)),
            _ => Err(QueryError::new(format!(
                "expected an operator ({OPERATOR_LIST}) at position {} but found {}",
                token.pos,
                token.describe()
            ))),
        }
    }

    // list := '(' literal (',' literal)* ')'
    fn parse_in_list(&mut self) -> Result<Vec<Scalar>, QueryError> {
        match self.advance() {
            Some(Token {
                kind: TokenKind::LParen,
                ..
            }) => {}
            Some(other) => {
                return Err(QueryError::new(format!(
                    "expected '(' after 'in' but found {} at position {}",
                    other.describe(),
                    other.pos
                )));
            }
            None => {
                return Err(QueryError::new(
                    "expected '(' after 'in' but the filter ended",
                ));
            }
        }
        let mut values = Vec::new();
        loop {
            let position = self.peek().map(|t| t.pos);
            match self.parse_operand()? {
                Operand::Literal(value) => values.push(value),
                _ => {
                    return Err(QueryError::new(format!(
                        "'in' lists may only contain literal values (position {})",
                        position.unwrap_or_default()
                    )));
                }
            }
            match self.advance() {
                Some(Token {
                    kind: TokenKind::Comma,
                    ..
                }) => continue,
                Some(Token {
                    kind: TokenKind::RParen,
                    ..
                }) => return Ok(values),
                Some(other) => {
                    return Err(QueryError::new(format!(
                        "expected ',' or ')' in 'in' list but found {} at position {}",
                        other.describe(),
                        other.pos
                    )));
                }
                None => return Err(QueryError::new("missing ')' to close 'in' list")),
            }
        }
    }

    // operand := string | number | true | false | null | function '(' args ')' | path
    fn parse_operand(&mut self) -> Result<Operand, QueryError> {
        let Some(token) = self.advance() else {
            return Err(QueryError::new(format!(
                "expected a value {} but the filter ended",
                self.after_previous()
            )));
        };
        match token.kind {
            TokenKind::Str(text) => Ok(Operand::Literal(Scalar::Text(text))),
            TokenKind::Number(text) => Ok(Operand::Literal(Scalar::number_from_text(text))),
            TokenKind::Word(word) => {
                if self.peek_is(&TokenKind::LParen) {
                    return self.parse_call(&word, token.pos);
                }
                match word.to_ascii_lowercase().as_str() {
                    "true" => Ok(Operand::Literal(Scalar::Bool(true))),
                    "false" => Ok(Operand::Literal(Scalar::Bool(false))),
                    "null" => Ok(Operand::Literal(Scalar::Null)),
                    lower if RESERVED_WORDS.contains(&lower) => Err(QueryError::new(format!(
                        "expected a value at position {} but found keyword '{word}'",
                        token.pos
                    ))),
                    _ => {
                        validate_path(&word).map_err(|e| {
                            QueryError::new(format!("{} at position {}", e.message, token.pos))
                        })?;
                        Ok(Operand::Field(word))
                    }
                }
            }
            _ => Err(QueryError::new(format!(
                "expected a value at position {} but found {}",
                token.pos,
                token.describe()
            ))),
        }
    }

    fn parse_call(&mut self, name: &str, pos: usize) -> Result<Operand, QueryError> {
        let function = Function::from_name(name).ok_or_else(|| {
            QueryError::new(format!("unknown function '{name}' at position {pos}"))
        })?;
        self.next += 1; // the '(' we peeked
        let mut args = Vec::new();
        if self.peek_is(&TokenKind::RParen) {
            self.next += 1;
        } else {
            loop {
                args.push(self.parse_operand()?);
                match self.advance() {
                    Some(Token {
                        kind: TokenKind::Comma,
                        ..
                    }) => continue,
                    Some(Token {
                        kind: TokenKind::RParen,
                        ..
                    }) => break,
                    Some(other) => {
                        return Err(QueryError::new(format!(
                            "expected ',' or ')' in arguments of '{name}' but found {} at position {}",
                            other.describe(),
                            other.pos
                        )));
                    }
                    None => {
                        return Err(QueryError::new(format!(
                            "missing ')' to close '{name}(' at position {pos}"
                        )));
                    }
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            };
            return Err(QueryError::new(format!(
                "function '{name}' at position {pos} takes {expected} argument(s) but was given {}",
                args.len()
            )));
        }
        Ok(Operand::Call(function, args))
    }
}

fn unknown_operator(token: &Token) -> QueryError {
    QueryError::new(format!(
        "unknown operator {} at position {}; expected one of {OPERATOR_LIST}",
        token.describe(),
        token.pos
    ))
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

impl Expr {
    fn eval(&self, record: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(record) || b.eval(record),
            Expr::And(a, b) => a.eval(record) && b.eval(record),
            Expr::Not(inner) => !inner.eval(record),
            Expr::Compare(left, op, right) => {
                let lefts = flatten(left.eval(record));
                let rights = flatten(right.eval(record));
                lefts
                    .iter()
                    .any(|l| rights.iter().any(|r| op.holds(compare_scalars(l, r))))
            }
            Expr::In(left, candidates) => flatten(left.eval(record)).iter().any(|l| {
                candidates
                    .iter()
                    .any(|c| compare_scalars(l, c) == Some(Ordering::Equal))
            }),
            Expr::Truthy(operand) => flatten(operand.eval(record)).contains(&Scalar::Bool(true)),
        }
    }
}

impl Operand {
    /// One entry per value reached (paths fan out across arrays).
    fn eval(&self, record: &Value) -> Vec<Scalar> {
        match self {
            Operand::Literal(value) => vec![value.clone()],
            Operand::Field(path) => {
                let found = lookup(record, path);
                if found.is_empty() {
                    vec![Scalar::Null]
                } else {
                    found.into_iter().map(Scalar::from_json).collect()
                }
            }
            Operand::Call(function, args) => apply_function(*function, args, record),
        }
    }
}

fn apply_function(function: Function, args: &[Operand], record: &Value) -> Vec<Scalar> {
    let subject = args[0].eval(record);
    match function {
        Function::Contains | Function::StartsWith | Function::EndsWith => {
            let haystacks = flatten(subject);
            let needles = flatten(args[1].eval(record));
            let matched = haystacks.iter().filter_map(Scalar::as_text).any(|hay| {
                needles
                    .iter()
                    .filter_map(Scalar::as_text)
                    .any(|needle| match function {
                        Function::Contains => hay.contains(needle),
                        Function::StartsWith => hay.starts_with(needle),
                        _ => hay.ends_with(needle),
                    })
            });
            vec![Scalar::Bool(matched)]
        }
        Function::Length => subject
            .into_iter()
            .map(|value| match value {
                Scalar::List(items) => Scalar::integer(items.len() as i64),
                other => other
                    .as_text()
                    .map_or(Scalar::Null, |s| Scalar::integer(s.chars().count() as i64)),
            })
            .collect(),
        Function::Substring => {
            let first_integer = |operand: &Operand| {
                flatten(operand.eval(record))
                    .first()
                    .and_then(Scalar::as_integer)
            };
            let start = first_integer(&args[1]);
            let length = args.get(2).map(first_integer);
            map_each(subject, &|value| {
                let (Some(text), Some(start)) = (value.as_text(), start) else {
                    return Scalar::Null;
                };
                // OData: 0-based start; a negative start or length counts as 0.
                let skipped = text.chars().skip(start.max(0) as usize);
                Scalar::Text(match length {
                    None => skipped.collect(),
                    Some(Some(n)) => skipped.take(n.max(0) as usize).collect(),
                    Some(None) => return Scalar::Null,
                })
            })
        }
        Function::ToLower => map_text(subject, str::to_lowercase),
        Function::ToUpper => map_text(subject, str::to_uppercase),
        Function::Trim => map_text(subject, |s| s.trim().to_string()),
        Function::Year => map_date(subject, |d| i64::from(d.date().year())),
        Function::Month => map_date(subject, |d| i64::from(d.date().month())),
        Function::Day => map_date(subject, |d| i64::from(d.date().day())),
        Function::Hour => map_date(subject, |d| time_part(d, |t| t.hour())),
        Function::Minute => map_date(subject, |d| time_part(d, |t| t.minute())),
        Function::Second => map_date(subject, |d| time_part(d, |t| t.second())),
    }
}

/// Applies `f` to every value, looking inside lists so that functions over a
/// field that ends on an array work element-wise.
fn map_each(values: Vec<Scalar>, f: &dyn Fn(&Scalar) -> Scalar) -> Vec<Scalar> {
    fn apply(value: Scalar, f: &dyn Fn(&Scalar) -> Scalar) -> Scalar {
        match value {
            Scalar::List(items) => Scalar::List(items.into_iter().map(|i| apply(i, f)).collect()),
            other => f(&other),
        }
    }
    values.into_iter().map(|value| apply(value, f)).collect()
}

fn map_text(values: Vec<Scalar>, f: fn(&str) -> String) -> Vec<Scalar> {
    map_each(values, &|value| {
        value
            .as_text()
            .map_or(Scalar::Null, |text| Scalar::Text(f(text)))
    })
}

fn map_date(values: Vec<Scalar>, f: fn(&DateLike) -> i64) -> Vec<Scalar> {
    map_each(values, &|value| match value {
        Scalar::Text(text) => {
            DateLike::parse(text).map_or(Scalar::Null, |d| Scalar::integer(f(&d)))
        }
        _ => Scalar::Null,
    })
}

/// Time components of a date-time as written; a bare date is midnight.
fn time_part(date: &DateLike, part: fn(&chrono::NaiveTime) -> u32) -> i64 {
    match date {
        DateLike::Date(_) => 0,
        DateLike::DateTime(date_time) => i64::from(part(&date_time.time())),
    }
}

// ---------------------------------------------------------------------------
// Public filter API
// ---------------------------------------------------------------------------

/// A parsed `filter` query parameter.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    pub fn parse(input: &str) -> Result<Filter, QueryError> {
        let tokens = tokenize(input)?;
        if tokens.is_empty() {
            return Err(QueryError::new("filter expression is empty"));
        }
        let mut parser = Parser { tokens, next: 0 };
        let expr = parser.parse_or()?;
        if let Some(extra) = parser.peek() {
            let message = if extra.kind == TokenKind::RParen {
                format!(
                    "unexpected ')' at position {} with no matching '('",
                    extra.pos
                )
            } else {
                format!(
                    "unexpected {} at position {} after a complete expression",
                    extra.describe(),
                    extra.pos
                )
            };
            return Err(QueryError::new(message));
        }
        Ok(Filter { expr })
    }

    pub fn matches(&self, record: &Value) -> bool {
        self.expr.eval(record)
    }
}

// ---------------------------------------------------------------------------
// orderby
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SortKey {
    path: String,
    descending: bool,
}

/// A parsed `orderby` query parameter, e.g. `customer.name,invoicedate desc`.
#[derive(Debug, Clone)]
pub struct OrderBy {
    keys: Vec<SortKey>,
}

impl OrderBy {
    pub fn parse(input: &str) -> Result<OrderBy, QueryError> {
        if input.trim().is_empty() {
            return Err(QueryError::new("orderby is empty"));
        }
        let mut keys = Vec::new();
        for (index, item) in input.split(',').enumerate() {
            let mut words = item.split_whitespace();
            let Some(path) = words.next() else {
                return Err(QueryError::new(format!(
                    "orderby item {} is empty",
                    index + 1
                )));
            };
            validate_path(path)?;
            let descending = match words.next() {
                None => false,
                Some(d) if d.eq_ignore_ascii_case("asc") => false,
                Some(d) if d.eq_ignore_ascii_case("desc") => true,
                Some(other) => {
                    return Err(QueryError::new(format!(
                        "unknown sort direction '{other}' for '{path}'; expected asc or desc"
                    )));
                }
            };
            if let Some(extra) = words.next() {
                return Err(QueryError::new(format!(
                    "unexpected '{extra}' in orderby item '{}'",
                    item.trim()
                )));
            }
            keys.push(SortKey {
                path: path.to_string(),
                descending,
            });
        }
        Ok(OrderBy { keys })
    }

    /// A total order (required by `sort_by`); ties return `Equal` so a stable
    /// sort keeps input order.
    pub fn compare(&self, a: &Value, b: &Value) -> Ordering {
        for key in &self.keys {
            let ordering = sort_value(a, &key.path).cmp(&sort_value(b, &key.path));
            let ordering = if key.descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        Ordering::Equal
    }
}

/// What a record sorts by. Variant order is the cross-type order (nulls first).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Null,
    Bool(bool),
    Number(Decimal),
    /// Instant in UTC, then the raw text so distinct values never tie.
    Date(NaiveDateTime, String),
    /// Lowercased text first (case-insensitive order), raw text breaks ties.
    Text(String, String),
    Other(String),
}

fn sort_value(record: &Value, path: &str) -> SortValue {
    fn first_element(value: &Value) -> Option<&Value> {
        match value {
            Value::Array(items) => items.first().and_then(first_element),
            other => Some(other),
        }
    }
    let Some(value) = lookup(record, path).into_iter().find_map(first_element) else {
        return SortValue::Null;
    };
    match value {
        Value::Null => SortValue::Null,
        Value::Bool(b) => SortValue::Bool(*b),
        Value::Number(n) => Decimal::parse(&n.to_string())
            .map_or_else(|| SortValue::Other(n.to_string()), SortValue::Number),
        Value::String(s) => match DateLike::parse(s) {
            Some(date) => SortValue::Date(date.instant_utc(), s.clone()),
            None => SortValue::Text(s.to_lowercase(), s.clone()),
        },
        other => SortValue::Other(other.to_string()),
    }
}

// ---------------------------------------------------------------------------
// select
// ---------------------------------------------------------------------------

/// Parses `select=id,name,lineitems.item.name` into validated paths.
pub fn parse_select(input: &str) -> Result<Vec<String>, QueryError> {
    if input.trim().is_empty() {
        return Err(QueryError::new("select is empty"));
    }
    input
        .split(',')
        .enumerate()
        .map(|(index, item)| {
            let path = item.trim();
            if path.is_empty() {
                return Err(QueryError::new(format!(
                    "select item {} is empty",
                    index + 1
                )));
            }
            validate_path(path)?;
            Ok(path.to_string())
        })
        .collect()
}

/// Projects a record onto the selected paths (see the module docs).
pub fn apply_select(record: &Value, paths: &[String]) -> Value {
    if paths.is_empty() {
        return record.clone();
    }
    let split: Vec<Vec<&str>> = paths.iter().map(|p| p.split('.').collect()).collect();
    let segments: Vec<&[&str]> = split.iter().map(Vec::as_slice).collect();
    project(record, &segments).unwrap_or(Value::Null)
}

/// `None` means nothing selectable lives here (a path continues into a
/// string or number), so the caller leaves the key out.
fn project(value: &Value, paths: &[&[&str]]) -> Option<Value> {
    match value {
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(|item| project(item, paths))
                .collect(),
        )),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child) in map {
                let rests: Vec<&[&str]> = paths
                    .iter()
                    .filter_map(|path| match path.split_first() {
                        Some((first, rest)) if first.eq_ignore_ascii_case(key) => Some(rest),
                        _ => None,
                    })
                    .collect();
                if rests.is_empty() {
                    continue;
                }
                // Selecting `customer` wins over also selecting `customer.name`.
                if rests.iter().any(|rest| rest.is_empty()) {
                    out.insert(key.clone(), child.clone());
                } else if let Some(projected) = project(child, &rests) {
                    out.insert(key.clone(), projected);
                }
            }
            Some(Value::Object(out))
        }
        Value::Null => Some(Value::Null),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invoice() -> Value {
        json!({
            "id": "inv-1",
            "name": "Jane Citizen",
            "status": "Active",
            "isArchived": false,
            "lastModifiedDateTime": "2026-01-02T03:04:05Z",
            "invoiceDate": "2020-03-31",
            "dueDate": "2020-04-30T00:00:00",
            "customer": {"id": "c-1", "name": "Jane"},
            "totalAmount": 110.0,
            "balance": -5.25,
            "reference": "1042",
            "notes": null,
            "tags": ["urgent", "medical"],
            "electronicAddresses": [
                {"type": {"id": "t-1", "name": "Email"}, "address": "a@b.com"},
                {"type": {"id": "t-2", "name": "Website"}, "address": "https://example.com"}
            ],
            "lineItems": [
                {"item": {"id": "i-1", "name": "Consult"}, "amount": 100},
                {"item": {"id": "i-2", "name": "Dressing"}, "amount": 10}
            ]
        })
    }

    /// Parses and evaluates against `invoice()`, panicking on a parse error.
    fn check(filter: &str) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter:?} failed to parse: {e}"))
            .matches(&invoice())
    }

    fn parse_error(filter: &str) -> String {
        match Filter::parse(filter) {
            Ok(parsed) => panic!("{filter:?} should not parse, got {parsed:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn eq_and_ne_on_strings() {
        assert!(check("name eq 'Jane Citizen'"));
        assert!(!check("name eq 'Jane'"));
        assert!(check("name ne 'Jane'"));
        assert!(!check("name ne 'Jane Citizen'"));
    }

    #[test]
    fn ordering_operators_on_numbers() {
        assert!(check("totalAmount gt 100"));
        assert!(!check("totalAmount gt 110"));
        assert!(check("totalAmount ge 110"));
        assert!(check("totalAmount lt 110.01"));
        assert!(!check("totalAmount lt 110"));
        assert!(check("totalAmount le 110"));
        assert!(check("balance lt -5"));
        assert!(check("balance gt -5.3"));
        assert!(check("balance eq -5.250"));
    }

    #[test]
    fn numbers_compare_as_exact_decimals() {
        assert!(check("totalAmount eq 110"));
        assert!(check("totalAmount eq 110.00"));
        assert!(check("totalAmount eq 1.1e2"));
        assert!(!check("totalAmount eq 110.000000000000001"));
        // 0.1 + 0.2 in f64 is not 0.3, and we must not pretend it is.
        let sum = json!({"amount": 0.1 + 0.2});
        assert!(!Filter::parse("amount eq 0.3").unwrap().matches(&sum));
        let cents = json!({"amount": 19.99});
        assert!(Filter::parse("amount eq 19.990").unwrap().matches(&cents));
    }

    #[test]
    fn decimal_ordering_is_numeric() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert!(d("9") < d("10"));
        assert!(d("-1.5") < d("-1.25"));
        assert!(d("-0.001") < d("0"));
        assert_eq!(d("1e3"), d("1000.0"));
        assert_eq!(d("-0.000"), d("0"));
        assert!(d("0.1") > d("0.09999999999999999999"));
        assert!(d("123456789012345678901234567890.01") > d("123456789012345678901234567890"));
        assert_eq!(d("110.50").to_i64(), None);
        assert_eq!(d("-42.0").to_i64(), Some(-42));
        assert!(Decimal::parse("1.2.3").is_none());
        assert!(Decimal::parse("abc").is_none());
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // false or (true and true) => true; (false or true) and false would differ below.
        assert!(check(
            "name eq 'x' or status eq 'Active' and totalAmount eq 110"
        ));
        // true or (true and false) => true
        assert!(check(
            "status eq 'Active' or name eq 'Jane Citizen' and totalAmount eq 1"
        ));
        // (false and ...) or false => false
        assert!(!check(
            "name eq 'x' and status eq 'Active' or totalAmount eq 1"
        ));
    }

    #[test]
    fn parentheses_group() {
        assert!(!check(
            "(status eq 'Active' or name eq 'Jane Citizen') and totalAmount eq 1"
        ));
        assert!(check("((status eq 'Active'))"));
        assert!(check(
            "(name eq 'x' or status eq 'Active') and (totalAmount eq 110)"
        ));
    }

    #[test]
    fn not_negates() {
        assert!(check("not name eq 'x'"));
        assert!(!check("not (status eq 'Active')"));
        assert!(check("not not status eq 'Active'"));
        assert!(check("not isArchived"));
        assert!(!check("isArchived"));
        assert!(check("not contains(name, 'Bob')"));
    }

    #[test]
    fn both_quote_kinds_and_escaped_quotes() {
        assert!(check("name eq \"Jane Citizen\""));
        assert!(check("invoicedate le \"2020-03-31\""));
        let record = json!({"name": "O'Brien", "nick": "say \"hi\""});
        assert!(
            Filter::parse("name eq 'O''Brien'")
                .unwrap()
                .matches(&record)
        );
        assert!(
            Filter::parse("name eq \"O'Brien\"")
                .unwrap()
                .matches(&record)
        );
        assert!(
            Filter::parse("nick eq \"say \"\"hi\"\"\"")
                .unwrap()
                .matches(&record)
        );
        assert!(
            Filter::parse("nick eq 'say \"hi\"'")
                .unwrap()
                .matches(&record)
        );
    }

    #[test]
    fn nested_paths() {
        assert!(check("customer.name eq 'Jane'"));
        assert!(check("customer.id eq 'c-1'"));
        assert!(!check("customer.name eq 'Jane Citizen'"));
        assert!(check("customer.missing eq null"));
    }

    #[test]
    fn paths_across_arrays_match_any_element() {
        assert!(check("electronicAddresses.address eq 'a@b.com'"));
        assert!(check("electronicAddresses.type.name eq 'Website'"));
        assert!(!check("electronicAddresses.address eq 'c@d.com'"));
        assert!(check("lineItems.item.name eq 'Dressing'"));
        assert!(check("lineItems.amount gt 50"));
        assert!(!check("lineItems.amount gt 100"));
        // A field that ends on an array of scalars also fans out.
        assert!(check("tags eq 'medical'"));
        assert!(check("tags in ('x', 'urgent')"));
        // An empty array behaves like null.
        let empty = json!({"tags": []});
        assert!(Filter::parse("tags eq null").unwrap().matches(&empty));
        assert!(Filter::parse("tags ne 'x'").unwrap().matches(&empty));
    }

    #[test]
    fn field_names_are_case_insensitive() {
        assert!(check("NAME eq 'Jane Citizen'"));
        assert!(check("invoicedate eq '2020-03-31'"));
        assert!(check("lineitems.ITEM.name eq 'Consult'"));
        assert!(check("totalamount eq 110"));
        // An exact-case key wins over a case-insensitive one.
        let record = json!({"Name": "upper", "name": "lower"});
        assert_eq!(lookup(&record, "name"), vec![&json!("lower")]);
        assert_eq!(lookup(&record, "NAME"), vec![&json!("upper")]);
    }

    #[test]
    fn values_are_case_sensitive_and_keywords_are_not() {
        assert!(!check("name eq 'jane citizen'"));
        assert!(!check("status eq 'ACTIVE'"));
        assert!(check("name EQ 'Jane Citizen' AND status Eq 'Active'"));
        assert!(check("NOT name eq 'x' OR name eq 'y'"));
        assert!(check("name eq 'x' or isArchived eq FALSE"));
    }

    #[test]
    fn dates_and_date_times() {
        // date vs date
        assert!(check("invoiceDate eq '2020-03-31'"));
        assert!(check("invoiceDate gt '2020-03-30'"));
        assert!(check("invoiceDate lt '2020-04-01'"));
        // unquoted date literals are accepted
        assert!(check("invoiceDate lt 2020-04-01"));
        // date-time record vs date literal compares by calendar date only
        assert!(check("lastModifiedDateTime le '2026-01-02'"));
        assert!(check("lastModifiedDateTime ge '2026-01-02'"));
        assert!(check("lastModifiedDateTime eq '2026-01-02'"));
        assert!(!check("lastModifiedDateTime gt '2026-01-02'"));
        assert!(check("lastModifiedDateTime gt '2026-01-01'"));
        // date-time vs date-time compares instants, honouring offsets
        assert!(check("lastModifiedDateTime gt '2026-01-02T03:04:04Z'"));
        assert!(check("lastModifiedDateTime eq '2026-01-02T13:04:05+10:00'"));
        assert!(check("lastModifiedDateTime lt 2026-01-02T13:04:06+10:00"));
        // a date-time without offset is UTC
        assert!(check("dueDate eq '2020-04-30T00:00:00Z'"));
        assert!(check("dueDate gt '2020-04-29T23:59:59Z'"));
        // a date-time's calendar date is the one written, in its own offset
        let late = json!({"at": "2020-03-31T23:30:00-05:00"});
        assert!(Filter::parse("at eq '2020-03-31'").unwrap().matches(&late));
    }

    #[test]
    fn date_functions() {
        assert!(check("year(invoiceDate) eq 2020"));
        assert!(check("month(invoiceDate) eq 3"));
        assert!(check("day(invoiceDate) eq 31"));
        assert!(check(
            "year(lastModifiedDateTime) eq 2026 and hour(lastModifiedDateTime) eq 3"
        ));
        assert!(check(
            "minute(lastModifiedDateTime) eq 4 and second(lastModifiedDateTime) eq 5"
        ));
        assert!(check("year(name) eq null"));
    }

    #[test]
    fn text_functions_in_function_form() {
        assert!(check("contains(name,'Citi')"));
        assert!(!check("contains(name,'citi')"));
        assert!(check("startswith(name, 'Jane')"));
        assert!(!check("startswith(name, 'Citizen')"));
        assert!(check("endswith(name, 'Citizen')"));
        assert!(check("contains(electronicAddresses.address, 'example')"));
        assert!(check("contains(name, 'Jane') eq true"));
        assert!(!check("contains(missingField, 'x')"));
    }

    #[test]
    fn text_functions_in_infix_form() {
        assert!(check("name contains 'Citi'"));
        assert!(check("name startswith 'Jane'"));
        assert!(check("name endswith 'zen'"));
        assert!(!check("name endswith 'Jane'"));
        assert!(check("customer.name Contains 'an' and name StartsWith 'J'"));
        assert!(check("electronicAddresses.address endswith '.com'"));
    }

    #[test]
    fn in_lists() {
        assert!(check("name in ('Book A', 'Jane Citizen')"));
        assert!(!check("name in ('Book A','Book B')"));
        assert!(check("status in (\"Active\")"));
        assert!(check("totalAmount in (1, 110.0, 3)"));
        assert!(check("notes in (null, 'x')"));
        assert!(check("not name in ('Book A')"));
    }

    #[test]
    fn transforming_functions() {
        assert!(check("tolower(name) eq 'jane citizen'"));
        assert!(check("toupper(status) eq 'ACTIVE'"));
        assert!(check("tolower(electronicAddresses.type.name) eq 'email'"));
        assert!(check("length(name) eq 12"));
        assert!(check("length(tags) eq 2"));
        assert!(check("length(customer.name) lt 5"));
        assert!(check("substring(name, 5) eq 'Citizen'"));
        assert!(check("substring(name, 0, 4) eq 'Jane'"));
        assert!(check("startswith(tolower(name), 'jane')"));
        let padded = json!({"name": "  Joe Bloggs "});
        assert!(
            Filter::parse("trim(name) eq 'Joe Bloggs'")
                .unwrap()
                .matches(&padded)
        );
    }

    #[test]
    fn nulls_and_unknown_fields() {
        assert!(check("nosuchfield eq null"));
        assert!(check("notes eq null"));
        assert!(check("nosuchfield ne 'x'"));
        assert!(!check("nosuchfield eq 'x'"));
        assert!(!check("nosuchfield gt 'x'"));
        assert!(!check("nosuchfield lt 5"));
        assert!(check("customer ne null"));
        assert!(!check("customer eq null"));
        assert!(check("name ne null"));
    }

    #[test]
    fn booleans_and_numeric_strings() {
        assert!(check("isArchived eq false"));
        assert!(!check("isArchived eq true"));
        assert!(check("reference eq 1042"));
        assert!(check("reference eq '1042'"));
        assert!(check("reference gt 999"));
        // Both strings: compared as text, so '999' > '1042'.
        assert!(check("reference lt '999'"));
        assert!(!check("name eq 5"));
    }

    #[test]
    fn error_unterminated_string() {
        let message = parse_error("name eq 'Jane");
        assert!(message.contains("unterminated string"), "{message}");
        assert!(message.contains("position 9"), "{message}");
        assert!(parse_error("name eq \"Jane'").contains("unterminated"));
    }

    #[test]
    fn error_missing_operand() {
        let message = parse_error("name eq");
        assert!(message.contains("expected a value"), "{message}");
        assert!(message.contains("'eq'"), "{message}");
        let message = parse_error("name eq and status eq 'x'");
        assert!(message.contains("keyword 'and'"), "{message}");
        assert!(parse_error("name eq 'x' and").contains("expected a value"));
        assert!(parse_error("(name eq 'x'").contains("missing ')'"));
        assert!(parse_error("name in ()").contains("expected a value"));
        assert!(parse_error("").contains("empty"));
        assert!(parse_error("   ").contains("empty"));
    }

    #[test]
    fn error_unknown_operator() {
        let message = parse_error("name like 'Jane'");
        assert!(message.contains("unknown operator 'like'"), "{message}");
        assert!(message.contains("position 6"), "{message}");
        assert!(parse_error("name = 'Jane'").contains("unknown operator '='"));
        assert!(parse_error("name 'Jane'").contains("expected an operator"));
        assert!(parse_error("frobnicate(name) eq 1").contains("unknown function 'frobnicate'"));
        assert!(parse_error("tolower(name, 'x') eq 'y'").contains("takes 1 argument"));
        assert!(parse_error("name eq 'a' # 1").contains("unexpected character '#'"));
        assert!(parse_error("amount eq 12abc").contains("invalid number '12abc'"));
    }

    #[test]
    fn error_trailing_garbage() {
        let message = parse_error("name eq 'x' 'y'");
        assert!(message.contains("unexpected string 'y'"), "{message}");
        assert!(message.contains("position 13"), "{message}");
        assert!(parse_error("name eq 'x')").contains("no matching '('"));
        assert!(parse_error("name eq 'x' status").contains("unexpected 'status'"));
        assert!(parse_error("customer..name eq 'x'").contains("empty segment"));
        assert!(parse_error("name in ('a' 'b')").contains("expected ',' or ')'"));
        assert!(parse_error("name in ('a', status)").contains("literal values"));
    }

    #[test]
    fn orderby_multiple_keys_with_desc_and_nulls() {
        let records = [
            json!({"id": 1, "customer": {"name": "Bob"}, "invoiceDate": "2020-01-01"}),
            json!({"id": 2, "customer": {"name": "alice"}, "invoiceDate": "2020-02-01"}),
            json!({"id": 3, "customer": {"name": "Bob"}, "invoiceDate": "2020-03-01"}),
            json!({"id": 4, "invoiceDate": "2019-12-31"}),
            json!({"id": 5, "customer": {"name": "Alice"}, "invoiceDate": "2020-01-15"}),
        ];
        let order = OrderBy::parse("customer.name, invoicedate desc").unwrap();
        let mut sorted = records.to_vec();
        sorted.sort_by(|a, b| order.compare(a, b));
        let ids: Vec<i64> = sorted.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        // null first; Alice/alice case-insensitively equal then case-sensitive
        // ("Alice" < "alice"); the two Bobs newest first.
        assert_eq!(ids, vec![4, 5, 2, 3, 1]);

        let descending = OrderBy::parse("CUSTOMER.NAME DESC").unwrap();
        sorted.sort_by(|a, b| descending.compare(a, b));
        let ids: Vec<i64> = sorted.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        // nulls last when descending; equal names keep their previous order.
        assert_eq!(ids, vec![3, 1, 2, 5, 4]);
    }

    #[test]
    fn orderby_numbers_and_dates_sort_by_value() {
        let a = json!({"amount": 9, "at": "2026-01-02T10:00:00+10:00"});
        let b = json!({"amount": 10.5, "at": "2026-01-02T01:00:00Z"});
        let by_amount = OrderBy::parse("amount").unwrap();
        assert_eq!(by_amount.compare(&a, &b), Ordering::Less);
        // 10:00+10:00 is 00:00Z, an hour before 01:00Z.
        let by_time = OrderBy::parse("at asc").unwrap();
        assert_eq!(by_time.compare(&a, &b), Ordering::Less);
        assert_eq!(by_time.compare(&b, &a), Ordering::Greater);
        assert_eq!(by_time.compare(&a, &a), Ordering::Equal);
        // Paths through arrays sort by the first element.
        let by_line = OrderBy::parse("lineItems.item.name desc").unwrap();
        let other = json!({"lineItems": [{"item": {"name": "Aspirin"}}]});
        assert_eq!(by_line.compare(&invoice(), &other), Ordering::Less);
    }

    #[test]
    fn orderby_errors() {
        assert!(OrderBy::parse("").is_err());
        assert!(
            OrderBy::parse("name sideways")
                .unwrap_err()
                .message
                .contains("sideways")
        );
        assert!(
            OrderBy::parse("name,")
                .unwrap_err()
                .message
                .contains("item 2 is empty")
        );
        assert!(OrderBy::parse("name desc extra").is_err());
        assert!(OrderBy::parse("customer..name").is_err());
    }

    #[test]
    fn select_projects_nested_paths_and_arrays() {
        let paths = parse_select("id, NAME,customer.name,lineitems.item.name,nosuch").unwrap();
        let projected = apply_select(&invoice(), &paths);
        assert_eq!(
            projected,
            json!({
                "id": "inv-1",
                "name": "Jane Citizen",
                "customer": {"name": "Jane"},
                "lineItems": [
                    {"item": {"name": "Consult"}},
                    {"item": {"name": "Dressing"}}
                ]
            })
        );
        // Output keeps the record's key order, not the select order.
        let keys: Vec<&String> = projected.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "name", "customer", "lineItems"]);
    }

    #[test]
    fn select_whole_subtrees_and_nulls() {
        let record =
            json!({"id": 1, "customer": {"id": "c", "name": "n"}, "contact": null, "name": "x"});
        let paths = parse_select("customer,customer.name,contact.name,name.first").unwrap();
        assert_eq!(
            apply_select(&record, &paths),
            json!({"customer": {"id": "c", "name": "n"}, "contact": null})
        );
        assert_eq!(apply_select(&record, &[]), record);
    }

    #[test]
    fn select_errors() {
        assert!(parse_select("").is_err());
        assert!(
            parse_select("id,,name")
                .unwrap_err()
                .message
                .contains("item 2")
        );
        assert!(parse_select("first name").is_err());
        assert!(parse_select("customer.").is_err());
        assert_eq!(parse_select(" id , name ").unwrap(), vec!["id", "name"]);
    }

    #[test]
    fn lookup_fans_out_across_arrays() {
        let record = invoice();
        assert_eq!(
            lookup(&record, "electronicAddresses.address"),
            vec![&json!("a@b.com"), &json!("https://example.com")]
        );
        assert_eq!(lookup(&record, "CUSTOMER.Name"), vec![&json!("Jane")]);
        assert_eq!(lookup(&record, "tags"), vec![&json!(["urgent", "medical"])]);
        assert!(lookup(&record, "customer.name.first").is_empty());
        assert!(lookup(&record, "nothing").is_empty());
        assert_eq!(lookup(&record, ""), vec![&record]);
    }
}
