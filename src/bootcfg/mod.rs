//! Models of the two boot-partition text files: `config.txt` (read by the GPU firmware) and
//! `cmdline.txt` (the kernel command line).
//!
//! Why models rather than `sed`-style string patches: pibake works as *plan, then apply*.
//! An edit is a value ("`gpu_mem=16` in `[all]`"), checked before any byte of an image is
//! written, and applied to a parsed file that knows its sections and parameters. That buys
//! three properties the tests pin down:
//!
//! * **Round trip.** Parsing and rendering an unedited file gives it back byte for byte, so
//!   baking a cluster never produces noise diffs in files it did not mean to change.
//! * **Idempotence.** Every edit checks what is already there; applying a plan twice (a
//!   re-bake, or an image baked from an already-baked one) gives the same file as once.
//! * **Section awareness.** Global settings never land inside a model filter such as
//!   `[pi4]`, whatever other tools appended to the file before us.
//!
//! Nothing here does I/O: callers read the files out of the FAT partition and write the
//! rendered text back.

mod cmdline;
mod config_txt;

pub use cmdline::Cmdline;
pub use config_txt::{ConfigTxt, Entry, OverlayParam, Section, check_overlay, parse_overlay};

/// Suggests the candidate closest to `word`, for "did you mean" hints.
///
/// Shared by overlay names here and unknown YAML keys in the inventory. Uses the optimal
/// string alignment distance (Levenshtein plus adjacent transpositions, since swapped
/// letters are the commonest typo), compared case-insensitively because the FAT boot
/// partition is. A candidate is only offered when it is close enough to be a plausible
/// typo: at most one edit per three characters of `word` (at least one edit). Ties go to
/// the alphabetically first candidate so the hint does not depend on directory order.
pub fn did_you_mean<S: AsRef<str>>(word: &str, candidates: &[S]) -> Option<String> {
    let word_lc = word.to_lowercase();
    let limit = (word_lc.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(AsRef::as_ref)
        .filter(|c| !c.is_empty())
        .map(|c| (edit_distance(&word_lc, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

/// Optimal string alignment distance between `a` and `b`, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j] = distance between a[..i] and b[..j]; three rows are enough for the
    // transposition look-back, but a full table keeps the code obviously right and names
    // are short.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i;
        }
    }
    if let Some(first_row) = rows.first_mut() {
        for (j, cell) in first_row.iter_mut().enumerate() {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_insertions_substitutions_and_swaps() {
        assert_eq!(edit_distance("dwc", "dwc2"), 1);
        assert_eq!(edit_distance("dwc2", "dcw2"), 1);
        assert_eq!(edit_distance("i2c-rtc", "i2c_rtc"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_the_overlay_a_typo_meant() {
        let have = ["vc4-kms-v3d", "dwc2", "disable-bt", "dwc-otg"];
        assert_eq!(did_you_mean("dwc", &have).as_deref(), Some("dwc2"));
        assert_eq!(did_you_mean("DWC2", &have).as_deref(), Some("dwc2"));
        assert_eq!(
            did_you_mean("vc4-kms-v3", &have).as_deref(),
            Some("vc4-kms-v3d")
        );
        assert_eq!(
            did_you_mean("disable_bt", &have).as_deref(),
            Some("disable-bt")
        );
    }

    #[test]
    fn suggests_nothing_for_unrelated_words() {
        let have = ["vc4-kms-v3d", "dwc2", "disable-bt"];
        assert_eq!(did_you_mean("zzzzzz", &have), None);
        assert_eq!(did_you_mean("x", &have), None);
        assert_eq!(did_you_mean("dwc", &[] as &[&str]), None);
    }
}
