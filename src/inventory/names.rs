//! Node names: ranges like `worker[001-144]`, and RFC 1123 hostnames.

/// Expands `worker[001-144]` into `worker001` .. `worker144` (the width of the first
/// number is kept); a name without brackets is itself.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        if pattern.contains(']') {
            return Err(format!("`{pattern}`: `]` without `[`"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern
        .find(']')
        .filter(|c| *c > open)
        .ok_or_else(|| format!("`{pattern}`: `[` without a closing `]`"))?;
    let (prefix, range, suffix) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    if suffix.contains('[') || suffix.contains(']') {
        return Err(format!("`{pattern}`: only one range per name"));
    }
    let (a, b) = range
        .split_once('-')
        .ok_or_else(|| format!("`{pattern}`: a range is `[FIRST-LAST]`, like worker[01-16]"))?;
    let parse = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("`{pattern}`: `{s}` is not a number"))
    };
    let (from, to) = (parse(a)?, parse(b)?);
    if from > to {
        return Err(format!(
            "`{pattern}`: the range runs backwards ({from} > {to})"
        ));
    }
    if to - from >= 10_000 {
        return Err(format!("`{pattern}`: more than 10000 nodes in one range"));
    }
    let width = if a.starts_with('0') { a.len() } else { 0 };
    Ok((from..=to)
        .map(|i| format!("{prefix}{i:0width$}{suffix}"))
        .collect())
}

/// Why `name` is not a valid hostname (RFC 1123 label), if it is not.
pub fn refuse_hostname(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 63 {
        return Some(format!("hostname `{name}` must be 1 to 63 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "hostname `{name}` contains `{c}`; use letters, digits and `-`"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some(format!("hostname `{name}` may not start or end with `-`"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_with_their_width() {
        assert_eq!(
            expand("worker[001-003]").unwrap(),
            ["worker001", "worker002", "worker003"]
        );
        assert_eq!(expand("p[1-2]").unwrap(), ["p1", "p2"]);
        assert_eq!(
            expand("node[8-10]-a").unwrap(),
            ["node8-a", "node9-a", "node10-a"]
        );
        assert_eq!(expand("head").unwrap(), ["head"]);
        for bad in ["w[1-", "w[a-3]", "w[3-1]", "w1]", "w[1-2][3-4]", "w[5]"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        assert!(refuse_hostname("worker-01").is_none());
        for bad in ["", "-a", "a-", "a_b", "a.b", &"x".repeat(64)] {
            assert!(refuse_hostname(bad).is_some(), "{bad}");
        }
    }
}
