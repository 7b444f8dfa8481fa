//! A value off the hub's `/metrics` text.

/// The value of the `/metrics` line that starts with `series`: the name, the labels if any,
/// and the space before the value (`"ssehub_topics_refused_total "`, so that a name is not
/// taken for the start of a longer one). Panics when there is no such line or the value is
/// not a whole number.
pub fn metric(text: &str, series: &str) -> u64 {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series:?} in /metrics"));
    value
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{series:?} in /metrics is {value:?}: {e}"))
}
