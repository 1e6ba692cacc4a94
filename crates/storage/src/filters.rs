//! Statement text built from parts: page queries whose WHERE clause names only the filters a
//! call gives ([`page_sql`]), and numbered placeholders for IN lists and multi-row statements
//! ([`placeholders`]). Only numbered placeholders are formatted into the text; values are bound.
//!
//! A list filter written `($2 IS NULL OR patient_ref = $2)` keeps one statement for every
//! combination, but neither database can use an index for it: SQLite plans a statement once for
//! every value, and PostgreSQL's generic plan does the same, so a look-up of one patient's rows or
//! a page after a cursor (`($4 IS NULL OR id > $4)`) reads the tenant's rows from the start. At a
//! hospital's volume that turns each look-up into a scan (a page-by-page listing into a square).

/// `base` (a SELECT ending in its first condition, which binds `$1` .. `$first - 1`) followed by
/// ` AND {condition} ${n}` for each filter given (numbered from `first`, in order), then
/// ` ORDER BY {order_by} LIMIT ${n}`. The caller binds the given filters' values in the same
/// order, then the limit.
pub fn page_sql(base: &str, first: usize, filters: &[(bool, &str)], order_by: &str) -> String {
    let mut sql = base.to_owned();
    let mut n = first;
    for (given, condition) in filters {
        if *given {
            sql.push_str(&format!(" AND {condition} ${n}"));
            n += 1;
        }
    }
    sql.push_str(&format!(" ORDER BY {order_by} LIMIT ${n}"));
    sql
}

/// Values bound per multi-row statement on SQLite. sqlx binds by parameter name and SQLite finds
/// each name by a walk over the statement's parameters, so binding `n` values costs about `n²`
/// (6,000 of them made that walk 70 % of a claims batch's CPU): about 500 keeps it small, and
/// still far fewer statements than one per row. PostgreSQL takes large statements.
pub const SQLITE_BINDS_PER_STATEMENT: usize = 512;

/// Rows of `per_row` bound values each that one multi-row SQLite statement carries.
pub fn sqlite_rows_per_statement(per_row: usize) -> usize {
    (SQLITE_BINDS_PER_STATEMENT / per_row.max(1)).max(1)
}

/// Numbered placeholders `$first, $first+1, …` for `n` values.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::page_sql;

    #[test]
    fn only_the_filters_given_are_named_and_numbered_in_order() {
        let base = "SELECT id FROM t WHERE tenant_id = $1";
        let filters = |a, b, c| [(a, "status ="), (b, "patient_ref ="), (c, "id >")];
        assert_eq!(
            page_sql(base, 2, &filters(false, false, false), "id"),
            "SELECT id FROM t WHERE tenant_id = $1 ORDER BY id LIMIT $2"
        );
        assert_eq!(
            page_sql(base, 2, &filters(false, true, true), "id"),
            "SELECT id FROM t WHERE tenant_id = $1 AND patient_ref = $2 AND id > $3 ORDER BY id LIMIT $4"
        );
        assert_eq!(
            page_sql(base, 2, &filters(true, true, true), "id"),
            "SELECT id FROM t WHERE tenant_id = $1 AND status = $2 AND patient_ref = $3 AND id > $4 \
             ORDER BY id LIMIT $5"
        );
    }
}
