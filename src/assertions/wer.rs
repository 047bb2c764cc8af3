//! Word error rate: normalization, word-level alignment, and a readable diff.
//!
//! Normalization (documented in docs/guide.md#assertions) makes the comparison about words,
//! not typography: servers and people disagree on case, punctuation and dashes, and a smoke
//! test should not fail on a comma.
//! - letters are lowercased (Unicode lowercase);
//! - typographic apostrophes (’ ‘ ʼ) become `'`; an apostrophe is kept only inside a word
//!   (`don't` stays, `'tis` becomes `tis`, `dogs'` becomes `dogs`);
//! - every other character that is not a letter or a digit separates words (so `well-known`
//!   is two words, `3.5` is `3 5`, `–` disappears);
//! - numbers are compared as written: `25` and `twenty five` differ.

/// Alignments bigger than this many cells (reference words × output words) report counts
/// only: the diff's direction table costs one byte per cell.
const MAX_DIFF_CELLS: usize = 4_000_000;

/// The words of `text` after normalization.
pub fn normalize(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\'' | '’' | '‘' | 'ʼ' => spaced.push('\''),
            c if c.is_alphanumeric() => spaced.extend(c.to_lowercase()),
            _ => spaced.push(' '),
        }
    }
    spaced
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// One step of the alignment from reference to output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    /// A reference word came out as a different word.
    Substitute,
    /// A reference word is missing from the output.
    Delete,
    /// The output has a word the reference does not.
    Insert,
}

/// The comparison of one output with its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Wer {
    pub reference: Vec<String>,
    pub got: Vec<String>,
    pub substitutions: usize,
    pub deletions: usize,
    pub insertions: usize,
    /// The alignment, when the texts are small enough to keep one.
    pub ops: Option<Vec<Op>>,
}

impl Wer {
    pub fn errors(&self) -> usize {
        self.substitutions + self.deletions + self.insertions
    }

    /// Edits per reference word. An empty reference counts each extra word as a whole
    /// error, so "expected nothing, got words" never passes a bound below 1.
    pub fn rate(&self) -> f64 {
        self.errors() as f64 / self.reference.len().max(1) as f64
    }
}

/// Aligns normalized `reference` and `got` with the fewest word edits (Levenshtein).
pub fn compare(reference: &str, got: &str) -> Wer {
    let r = normalize(reference);
    let g = normalize(got);
    let ops = if r.len().saturating_mul(g.len()) <= MAX_DIFF_CELLS {
        Some(align(&r, &g))
    } else {
        None
    };
    let (substitutions, deletions, insertions) = match &ops {
        Some(ops) => count(ops),
        None => counts_only(&r, &g),
    };
    Wer {
        reference: r,
        got: g,
        substitutions,
        deletions,
        insertions,
        ops,
    }
}

fn count(ops: &[Op]) -> (usize, usize, usize) {
    let n = |k: Op| ops.iter().filter(|&&o| o == k).count();
    (n(Op::Substitute), n(Op::Delete), n(Op::Insert))
}

/// Full table with a direction per cell, then a walk back from the end.
fn align(r: &[String], g: &[String]) -> Vec<Op> {
    let (n, m) = (r.len(), g.len());
    let w = m + 1;
    let mut dir = vec![Op::Equal; (n + 1) * w];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    dir[1..=m].fill(Op::Insert);
    for i in 1..=n {
        cur[0] = i;
        dir[i * w] = Op::Delete;
        for j in 1..=m {
            let same = r[i - 1] == g[j - 1];
            let diag = prev[j - 1] + usize::from(!same);
            let del = prev[j] + 1;
            let ins = cur[j - 1] + 1;
            // Prefer the diagonal on ties: a substitution reads better than a delete+insert.
            let (cost, op) = if diag <= del && diag <= ins {
                (diag, if same { Op::Equal } else { Op::Substitute })
            } else if del <= ins {
                (del, Op::Delete)
            } else {
                (ins, Op::Insert)
            };
            cur[j] = cost;
            dir[i * w + j] = op;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let mut ops = Vec::with_capacity(n.max(m));
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let op = dir[i * w + j];
        ops.push(op);
        match op {
            Op::Equal | Op::Substitute => {
                i -= 1;
                j -= 1;
            }
            Op::Delete => i -= 1,
            Op::Insert => j -= 1,
        }
    }
    ops.reverse();
    ops
}

/// Edit counts with two rows of memory, for texts too long to keep a table for. Each cell
/// carries (cost, substitutions, deletions, insertions) of one cheapest path.
fn counts_only(r: &[String], g: &[String]) -> (usize, usize, usize) {
    type Cell = (usize, usize, usize, usize);
    let mut prev: Vec<Cell> = (0..=g.len()).map(|j| (j, 0, 0, j)).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur: Vec<Cell> = Vec::with_capacity(g.len() + 1);
        cur.push((i + 1, 0, i + 1, 0));
        for (j, gw) in g.iter().enumerate() {
            let d = prev[j];
            let diag = if rw == gw {
                d
            } else {
                (d.0 + 1, d.1 + 1, d.2, d.3)
            };
            let u = prev[j + 1];
            let del = (u.0 + 1, u.1, u.2 + 1, u.3);
            let l = cur[j];
            let ins = (l.0 + 1, l.1, l.2, l.3 + 1);
            let best = if diag.0 <= del.0 && diag.0 <= ins.0 {
                diag
            } else if del.0 <= ins.0 {
                del
            } else {
                ins
            };
            cur.push(best);
        }
        prev = cur;
    }
    let last = prev[g.len()];
    (last.1, last.2, last.3)
}

/// Matching words kept on each side of a difference; longer matching runs are elided.
const CONTEXT: usize = 3;
/// Words shown of one side of a differing stretch; the middle of a longer one is elided.
const GROUP_WORDS: usize = 12;

/// Two lines, reference and output, with each differing stretch in [brackets] on both lines
/// (`[]` where one side has no words) and long matching stretches shown as `…`. `None` when
/// there is no alignment to show.
pub fn diff_lines(w: &Wer) -> Option<(String, String)> {
    let ops = w.ops.as_ref()?;
    let (mut reference, mut got) = (Vec::new(), Vec::new());
    let (mut i, mut j, mut k) = (0, 0, 0);
    while k < ops.len() {
        if ops[k] == Op::Equal {
            // A run of matches: keep CONTEXT words next to a difference on either side.
            let start = k;
            while k < ops.len() && ops[k] == Op::Equal {
                k += 1;
            }
            let run = &w.reference[i..i + (k - start)];
            let head = if start == 0 {
                0
            } else {
                CONTEXT.min(run.len())
            };
            let tail = if k == ops.len() {
                0
            } else {
                CONTEXT.min(run.len())
            };
            if head + tail >= run.len() {
                reference.extend(run.iter().cloned());
                got.extend(run.iter().cloned());
            } else {
                for side in [&mut reference, &mut got] {
                    side.extend(run[..head].iter().cloned());
                    side.push("…".to_string());
                    side.extend(run[run.len() - tail..].iter().cloned());
                }
            }
            i += run.len();
            j += run.len();
            continue;
        }
        // A run of differences: each side's words, bracketed together.
        let (mut rs, mut gs) = (Vec::new(), Vec::new());
        while k < ops.len() && ops[k] != Op::Equal {
            if ops[k] != Op::Insert {
                rs.push(w.reference[i].as_str());
                i += 1;
            }
            if ops[k] != Op::Delete {
                gs.push(w.got[j].as_str());
                j += 1;
            }
            k += 1;
        }
        reference.push(group(&rs));
        got.push(group(&gs));
    }
    Some((reference.join(" "), got.join(" ")))
}

fn group(words: &[&str]) -> String {
    if words.len() <= GROUP_WORDS {
        return format!("[{}]", words.join(" "));
    }
    let half = GROUP_WORDS / 2;
    format!(
        "[{} …{} more… {}]",
        words[..half].join(" "),
        words.len() - 2 * half,
        words[words.len() - half..].join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_drops_case_punctuation_and_outer_apostrophes() {
        assert_eq!(
            normalize(
                "It was the BEST of times, it was… the worst – don’t 'tis dogs' well-known 3.5"
            ),
            [
                "it", "was", "the", "best", "of", "times", "it", "was", "the", "worst", "don't",
                "tis", "dogs", "well", "known", "3", "5"
            ]
        );
        assert!(normalize(" ,.-– ").is_empty());
    }

    #[test]
    fn identical_after_normalization_is_zero() {
        let w = compare("Hello, world!", "hello world");
        assert_eq!(w.errors(), 0);
        assert_eq!(w.rate(), 0.0);
    }

    #[test]
    fn counts_substitutions_deletions_insertions() {
        let w = compare("a b c d", "a x c d e");
        assert_eq!((w.substitutions, w.deletions, w.insertions), (1, 0, 1));
        assert_eq!(w.rate(), 0.5);
        let w = compare("a b c d", "a d");
        assert_eq!((w.substitutions, w.deletions, w.insertions), (0, 2, 0));
    }

    #[test]
    fn empty_reference_counts_each_extra_word() {
        assert_eq!(compare("", "").rate(), 0.0);
        assert_eq!(compare("", "one two").rate(), 2.0);
        assert_eq!(compare("one two", "").rate(), 1.0);
    }

    #[test]
    fn two_row_counts_agree_with_the_alignment() {
        let cases = [
            ("a b c d e f", "a c d x f g"),
            ("the cat sat on the mat", "cat sat on a mat today"),
            ("x y z", "p q"),
        ];
        for (r, g) in cases {
            let (rn, gn) = (normalize(r), normalize(g));
            let full = count(&align(&rn, &gn));
            let fast = counts_only(&rn, &gn);
            assert_eq!(
                full.0 + full.1 + full.2,
                fast.0 + fast.1 + fast.2,
                "{r} / {g}"
            );
        }
    }

    #[test]
    fn diff_marks_differences_and_elides_long_matches() {
        let w = compare(
            "one two three four five six seven eight nine ten",
            "one two three four five six seven eight nine tan",
        );
        let (r, g) = diff_lines(&w).unwrap();
        assert_eq!(r, "… seven eight nine [ten]");
        assert_eq!(g, "… seven eight nine [tan]");
        let w = compare("a b c", "a c");
        let (r, g) = diff_lines(&w).unwrap();
        assert_eq!(r, "a [b] c");
        assert_eq!(g, "a [] c");
        let long: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        let w = compare("x", &format!("x {}", long.join(" ")));
        let (r, g) = diff_lines(&w).unwrap();
        assert_eq!(r, "x []");
        assert_eq!(g, "x [w0 w1 w2 w3 w4 w5 …8 more… w14 w15 w16 w17 w18 w19]");
    }
}
