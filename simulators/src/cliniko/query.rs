//! Cliniko's list query language: `q[]=field:<op>value` filters, `sort=a,b:desc`, and
//! `page`/`per_page` paging, with the default hiding of archived, cancelled and deleted rows.

use super::model::{Col, ColType, Resource};
use chrono::{DateTime, NaiveDate, Utc};
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// 400 `{"message":"This column is not searchable."}`
    NotSearchable,
    /// 400 `{"message":"Sort parameter must be a valid column name"}`
    BadSort,
    /// 400 for a value or operator the column's type does not take.
    BadFilter(String),
}

impl QueryError {
    pub fn message(&self) -> String {
        match self {
            QueryError::NotSearchable => "This column is not searchable.".into(),
            QueryError::BadSort => "Sort parameter must be a valid column name".into(),
            QueryError::BadFilter(m) => m.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    Like,
    NotNull,
    IsNull,
    Any,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    None,
    Ints(Vec<i64>),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    /// Date with optional wildcard parts: `****-05-**` is "any year, May, any day".
    Date {
        year: Option<i32>,
        month: Option<u32>,
        day: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: Op,
    operand: Operand,
}

/// A parsed list query for one resource type.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub conditions: Vec<Condition>,
    pub sort: Vec<(String, bool)>,
    pub page: usize,
    pub per_page: usize,
}

pub const DEFAULT_PER_PAGE: usize = 50;
pub const MAX_PER_PAGE: usize = 100;

fn split_op(rest: &str) -> Option<(Op, &str)> {
    // Longest operators first so `>=` is not read as `>`.
    const OPS: &[(&str, Op)] = &[
        ("!?", Op::IsNull),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("~~", Op::Like),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("~", Op::Contains),
        ("?", Op::NotNull),
        ("*", Op::Any),
    ];
    OPS.iter()
        .find(|(sym, _)| rest.starts_with(sym))
        .map(|(sym, op)| (*op, &rest[sym.len()..]))
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::BadFilter(msg.into())
}

fn parse_date_pattern(v: &str) -> Option<Operand> {
    let mut parts = v.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    fn part<T: std::str::FromStr>(p: &str, len: usize) -> Option<Option<T>> {
        if p.len() != len {
            return None;
        }
        if p.chars().all(|c| c == '*') {
            return Some(None);
        }
        p.parse().ok().map(Some)
    }
    let (year, month, day) = (part(y, 4)?, part(m, 2)?, part(d, 2)?);
    if let (Some(y), Some(m), Some(d)) = (year, month, day) {
        NaiveDate::from_ymd_opt(y, m, d)?;
    }
    Some(Operand::Date { year, month, day })
}

/// Parses one `q[]` value against the resource's searchable columns.
pub fn parse_condition<R: Resource>(raw: &str) -> Result<Condition, QueryError> {
    let (field, rest) = raw.split_once(':').ok_or(QueryError::NotSearchable)?;
    let field = field.trim();
    let col_type = R::SEARCHABLE
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, t)| *t)
        .ok_or(QueryError::NotSearchable)?;
    let (op, value) =
        split_op(rest).ok_or_else(|| bad(format!("Invalid filter operator in {raw:?}")))?;
    let allowed: &[Op] = match col_type {
        ColType::Int => &[
            Op::Eq,
            Op::Ne,
            Op::Gt,
            Op::Ge,
            Op::Lt,
            Op::Le,
            Op::NotNull,
            Op::IsNull,
        ],
        ColType::Str => &[
            Op::Eq,
            Op::Ne,
            Op::Contains,
            Op::Like,
            Op::NotNull,
            Op::IsNull,
        ],
        ColType::Bool => &[Op::Eq, Op::Ne],
        ColType::Time => &[
            Op::Gt,
            Op::Ge,
            Op::Lt,
            Op::Le,
            Op::NotNull,
            Op::IsNull,
            Op::Any,
        ],
        ColType::Date => &[
            Op::Eq,
            Op::Gt,
            Op::Ge,
            Op::Lt,
            Op::Le,
            Op::NotNull,
            Op::IsNull,
        ],
    };
    if !allowed.contains(&op) {
        return Err(bad(format!("Invalid filter operator for {field}")));
    }
    let operand = match op {
        Op::NotNull | Op::IsNull | Op::Any => Operand::None,
        _ => match col_type {
            ColType::Int => {
                let ints: Result<Vec<i64>, _> =
                    value.split(',').map(|v| v.trim().parse()).collect();
                let ints = ints.map_err(|_| bad(format!("Invalid value for {field}")))?;
                if ints.len() > 1 && op != Op::Eq {
                    return Err(bad(format!("Only = takes a list for {field}")));
                }
                Operand::Ints(ints)
            }
            ColType::Str => Operand::Text(value.to_string()),
            ColType::Bool => match value {
                "true" => Operand::Bool(true),
                "false" => Operand::Bool(false),
                _ => return Err(bad(format!("Invalid value for {field}"))),
            },
            ColType::Time => {
                // Cliniko wants UTC with a literal T and Z.
                if !(value.contains('T') && value.ends_with('Z')) {
                    return Err(bad(format!(
                        "Invalid date-time for {field}; use YYYY-MM-DDTHH:MM:SSZ"
                    )));
                }
                let t = DateTime::parse_from_rfc3339(value)
                    .map_err(|_| bad(format!("Invalid date-time for {field}")))?;
                Operand::Time(t.with_timezone(&Utc))
            }
            ColType::Date => {
                parse_date_pattern(value).ok_or_else(|| bad(format!("Invalid date for {field}")))?
            }
        },
    };
    Ok(Condition {
        field: field.to_string(),
        op,
        operand,
    })
}

fn like(pattern: &str, text: &str) -> bool {
    // SQL LIKE with `%` only, case-insensitive as Postgres ILIKE.
    let pattern = pattern.to_lowercase();
    let text = text.to_lowercase();
    crate::common::faults::glob_match(&pattern.replace('%', "*"), &text)
}

fn compare_ord(op: Op, ord: Ordering) -> bool {
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        _ => false,
    }
}

impl Condition {
    pub fn matches<R: Resource>(&self, record: &R) -> bool {
        let col = record.col(&self.field);
        match self.op {
            Op::Any => return true,
            Op::NotNull => return col != Col::Null,
            Op::IsNull => return col == Col::Null,
            _ => {}
        }
        match (&col, &self.operand) {
            (Col::Null, _) => self.op == Op::Ne,
            (Col::Int(v), Operand::Ints(list)) => match self.op {
                Op::Eq => list.contains(v),
                op => compare_ord(op, v.cmp(&list[0])),
            },
            (Col::Str(v), Operand::Text(t)) => match self.op {
                Op::Eq => v == t,
                Op::Ne => v != t,
                Op::Contains => v.to_lowercase().contains(&t.to_lowercase()),
                Op::Like => like(t, v),
                _ => false,
            },
            (Col::Bool(v), Operand::Bool(b)) => compare_ord(self.op, v.cmp(b)),
            (Col::Time(v), Operand::Time(t)) => compare_ord(self.op, v.cmp(t)),
            (Col::Date(v), Operand::Date { year, month, day }) => {
                use chrono::Datelike;
                match (year, month, day) {
                    (Some(y), Some(m), Some(d)) => match NaiveDate::from_ymd_opt(*y, *m, *d) {
                        Some(date) => compare_ord(self.op, v.cmp(&date)),
                        None => false,
                    },
                    // Wildcard dates only make sense as equality on the given parts.
                    _ => {
                        let hit = year.is_none_or(|y| v.year() == y)
                            && month.is_none_or(|m| v.month() == m)
                            && day.is_none_or(|d| v.day() == d);
                        match self.op {
                            Op::Eq => hit,
                            _ => false,
                        }
                    }
                }
            }
            _ => false,
        }
    }
}

fn col_cmp(a: &Col<'_>, b: &Col<'_>) -> Ordering {
    match (a, b) {
        (Col::Null, Col::Null) => Ordering::Equal,
        (Col::Null, _) => Ordering::Less,
        (_, Col::Null) => Ordering::Greater,
        (Col::Int(x), Col::Int(y)) => x.cmp(y),
        (Col::Str(x), Col::Str(y)) => x.cmp(y),
        (Col::Bool(x), Col::Bool(y)) => x.cmp(y),
        (Col::Time(x), Col::Time(y)) => x.cmp(y),
        (Col::Date(x), Col::Date(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl ListQuery {
    /// Builds a query from the raw query-string pairs.
    pub fn parse<R: Resource>(pairs: &[(String, String)]) -> Result<ListQuery, QueryError> {
        let mut q = ListQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            ..Default::default()
        };
        let mut order_desc = false;
        for (key, value) in pairs {
            match key.as_str() {
                // The legacy single `q=` form is accepted too.
                "q[]" | "q" => q.conditions.push(parse_condition::<R>(value)?),
                "page" => {
                    q.page = value
                        .parse()
                        .ok()
                        .filter(|p| *p >= 1)
                        .ok_or_else(|| bad("Invalid page"))?
                }
                "per_page" => {
                    let n: usize = value.parse().map_err(|_| bad("Invalid per_page"))?;
                    q.per_page = n.clamp(1, MAX_PER_PAGE);
                }
                "sort" => {
                    for part in value.split(',').filter(|p| !p.is_empty()) {
                        let (col, dir) = match part.split_once(':') {
                            Some((c, d)) => (c, d),
                            None => (part, "asc"),
                        };
                        let known = R::SEARCHABLE.iter().any(|(n, _)| *n == col)
                            || R::SORTABLE.contains(&col);
                        let desc = match dir {
                            "asc" => false,
                            "desc" => true,
                            _ => return Err(QueryError::BadSort),
                        };
                        if !known {
                            return Err(QueryError::BadSort);
                        }
                        q.sort.push((col.to_string(), desc));
                    }
                }
                "order" => order_desc = value == "desc",
                _ => {}
            }
        }
        if q.sort.is_empty() {
            q.sort.push(("created_at".into(), order_desc));
        }
        Ok(q)
    }

    /// Whether a row is visible: it passes every condition, and hidden states (archived,
    /// cancelled, deleted) are shown only when the query mentions that column.
    pub fn visible<R: Resource>(&self, record: &R) -> bool {
        let hidden = R::HIDDEN_UNLESS_ASKED.iter().any(|col| {
            record.col(col) != Col::Null && !self.conditions.iter().any(|c| c.field == *col)
        });
        !hidden && self.conditions.iter().all(|c| c.matches(record))
    }

    pub fn compare<R: Resource>(&self, a: &R, b: &R) -> Ordering {
        for (col, desc) in &self.sort {
            let ord = col_cmp(&a.col(col), &b.col(col));
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.id().cmp(&b.id())
    }

    /// Filters, sorts and pages; returns the page and the total count.
    pub fn run<'a, R: Resource>(&self, rows: impl Iterator<Item = &'a R>) -> (Vec<&'a R>, usize) {
        let mut hits: Vec<&R> = rows.filter(|r| self.visible(*r)).collect();
        hits.sort_by(|a, b| self.compare(*a, *b));
        let total = hits.len();
        let start = (self.page - 1).saturating_mul(self.per_page);
        let page = hits.into_iter().skip(start).take(self.per_page).collect();
        (page, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cliniko::model::Patient;
    use chrono::TimeZone;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn patient(id: u64, first: &str, updated_secs: i64) -> Patient {
        Patient {
            id,
            first_name: first.into(),
            last_name: "Citizen".into(),
            created_at: Utc.timestamp_opt(1_700_000_000 + id as i64, 0).unwrap(),
            updated_at: Utc.timestamp_opt(updated_secs, 0).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn operators_parse_longest_first() {
        let c = parse_condition::<Patient>("updated_at:>=2024-01-01T00:00:00Z").unwrap();
        assert_eq!(c.op, Op::Ge);
        let c = parse_condition::<Patient>("first_name:~~ja%on%").unwrap();
        assert_eq!(c.op, Op::Like);
        let c = parse_condition::<Patient>("archived_at:!?").unwrap();
        assert_eq!(c.op, Op::IsNull);
    }

    #[test]
    fn unknown_columns_are_not_searchable() {
        assert_eq!(
            parse_condition::<Patient>("deleted_at:>2024-01-01T00:00:00Z"),
            Err(QueryError::NotSearchable)
        );
        assert_eq!(
            parse_condition::<Patient>("nonsense"),
            Err(QueryError::NotSearchable)
        );
    }

    #[test]
    fn datetime_needs_utc_z_and_has_no_equals() {
        assert!(parse_condition::<Patient>("updated_at:>2024-01-01 00:00:00").is_err());
        assert!(parse_condition::<Patient>("updated_at:=2024-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn id_lists_and_comparisons() {
        let q = ListQuery::parse::<Patient>(&pairs(&[("q[]", "id:=1,3")])).unwrap();
        let rows = [patient(1, "a", 0), patient(2, "b", 0), patient(3, "c", 0)];
        let (page, total) = q.run(rows.iter());
        assert_eq!(total, 2);
        assert_eq!(page.iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn string_operators() {
        let p = patient(1, "Jameson", 0);
        let m = |f: &str| parse_condition::<Patient>(f).unwrap().matches(&p);
        assert!(m("first_name:=Jameson"));
        assert!(!m("first_name:=jameson"));
        assert!(m("first_name:~MES"));
        assert!(m("first_name:~~ja%on%"));
        assert!(!m("first_name:~~ja%x%"));
        assert!(m("first_name:!=Bob"));
        assert!(m("email:!?"));
        assert!(!m("email:?"));
    }

    #[test]
    fn archived_rows_hidden_unless_asked() {
        let mut archived = patient(2, "b", 0);
        archived.archived_at = Some(Utc.timestamp_opt(1_700_000_500, 0).unwrap());
        let rows = [patient(1, "a", 0), archived];
        let plain = ListQuery::parse::<Patient>(&[]).unwrap();
        assert_eq!(plain.run(rows.iter()).1, 1);
        let all = ListQuery::parse::<Patient>(&pairs(&[("q[]", "archived_at:*")])).unwrap();
        assert_eq!(all.run(rows.iter()).1, 2);
        let only = ListQuery::parse::<Patient>(&pairs(&[("q[]", "archived_at:?")])).unwrap();
        assert_eq!(only.run(rows.iter()).0[0].id, 2);
    }

    #[test]
    fn sort_multi_column_with_desc_and_paging() {
        let rows: Vec<Patient> = (1..=7)
            .map(|i| patient(i, "x", 100 - (i as i64 % 3)))
            .collect();
        let q = ListQuery::parse::<Patient>(&pairs(&[
            ("sort", "updated_at:desc,id"),
            ("per_page", "3"),
            ("page", "2"),
        ]))
        .unwrap();
        let (page, total) = q.run(rows.iter());
        assert_eq!(total, 7);
        // updated_at 100: ids 3,6; 99: 1,4,7; 98: 2,5 → second page of 3 is 4,7,2
        assert_eq!(page.iter().map(|p| p.id).collect::<Vec<_>>(), vec![4, 7, 2]);
        assert_eq!(
            ListQuery::parse::<Patient>(&pairs(&[("sort", "shoe_size")])).unwrap_err(),
            QueryError::BadSort
        );
    }

    #[test]
    fn date_wildcards_match_parts() {
        let mut p = patient(1, "a", 0);
        p.date_of_birth = NaiveDate::from_ymd_opt(1980, 5, 17);
        let m = |f: &str| parse_condition::<Patient>(f).unwrap().matches(&p);
        assert!(m("date_of_birth:=****-05-**"));
        assert!(!m("date_of_birth:=****-06-**"));
        assert!(m("date_of_birth:>=1980-01-01"));
        assert!(m("date_of_birth:?"));
    }

    #[test]
    fn per_page_is_capped_at_100() {
        let q = ListQuery::parse::<Patient>(&pairs(&[("per_page", "500")])).unwrap();
        assert_eq!(q.per_page, 100);
    }
}
