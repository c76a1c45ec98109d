//! The WHERE clause of a [`HistoryQuery`], shared by both backends.
//!
//! The clause names only the filters that are set (rather than `(? IS NULL OR grp = ?)` for
//! each): a statement of the form `grp = ? AND id < ? ORDER BY id DESC LIMIT ?` walks the
//! `(grp, id)` index and stops after `limit` rows, on SQLite and in a generic PostgreSQL
//! plan alike, where the catch-all form would scan the table. At most 32 shapes per table,
//! each prepared once per connection.

use super::{HistoryQuery, MAX_PAGE, ms};

/// A value bound to the clause, in placeholder order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
}

/// Which columns a query's filters apply to.
pub(crate) struct Columns {
    /// `group` (activities, errors) or the actor (audit).
    pub group: &'static str,
    /// `since` and `until`.
    pub time: &'static str,
    /// `status`.
    pub status: &'static str,
}

/// `WHERE … ORDER BY id DESC LIMIT …` for `q`, with its arguments. `status` is the value
/// the status column is compared with (the caller maps the query's text). `placeholder(n)`
/// spells the n-th (1-based) parameter: `?` for SQLite, `$n` for PostgreSQL.
pub(crate) fn clause<'a>(
    q: &HistoryQuery<'a>,
    cols: &Columns,
    status: Option<Arg<'a>>,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Arg<'a>>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    let mut add = |cond: String, arg: Arg<'a>| {
        args.push(arg);
        conds.push(cond.replace('#', &placeholder(args.len())));
    };
    if let Some(g) = q.group {
        add(format!("{} = #", cols.group), Arg::Text(g));
    }
    if let Some(s) = q.since {
        add(format!("{} >= #", cols.time), Arg::Int(ms(s)));
    }
    if let Some(u) = q.until {
        add(format!("{} < #", cols.time), Arg::Int(ms(u)));
    }
    if let Some(s) = status {
        add(format!("{} = #", cols.status), s);
    }
    if let Some(b) = q.before_id {
        add("id < #".to_string(), Arg::Int(b));
    }
    let filter = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    args.push(Arg::Int(i64::from(q.limit.min(MAX_PAGE))));
    let sql = format!(
        "{filter} ORDER BY id DESC LIMIT {}",
        placeholder(args.len())
    );
    (sql, args)
}

/// The audit log's `status` filter: `Some(None)` when the text matches nothing.
pub(crate) fn audit_allowed(status: Option<&str>) -> Option<Option<bool>> {
    match status {
        None => Some(None),
        Some("allowed") => Some(Some(true)),
        Some("denied") => Some(Some(false)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: Columns = Columns {
        group: "grp",
        time: "at_ms",
        status: "component",
    };

    fn pg(n: usize) -> String {
        format!("${n}")
    }

    #[test]
    fn only_the_filters_set_are_in_the_clause() {
        let q = HistoryQuery {
            limit: 5000,
            ..HistoryQuery::default()
        };
        let (sql, args) = clause(&q, &COLS, None, pg);
        assert_eq!(sql, " ORDER BY id DESC LIMIT $1");
        assert_eq!(args, [Arg::Int(1000)]);

        let q = HistoryQuery {
            group: Some("web"),
            before_id: Some(7),
            limit: 3,
            ..HistoryQuery::default()
        };
        let (sql, args) = clause(&q, &COLS, Some(Arg::Text("source")), pg);
        assert_eq!(
            sql,
            "WHERE grp = $1 AND component = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
        );
        assert_eq!(
            args,
            [
                Arg::Text("web"),
                Arg::Text("source"),
                Arg::Int(7),
                Arg::Int(3)
            ]
        );
    }

    #[test]
    fn audit_status_texts() {
        assert_eq!(audit_allowed(None), Some(None));
        assert_eq!(audit_allowed(Some("allowed")), Some(Some(true)));
        assert_eq!(audit_allowed(Some("denied")), Some(Some(false)));
        assert_eq!(audit_allowed(Some("Allowed")), None);
    }
}
