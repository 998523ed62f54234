//! A unified diff of two texts, line by line (what `port --diff` prints). Files here are
//! small (a pyproject.toml), so a longest-common-subsequence table is plenty.

/// `--- a` / `+++ b` headers, then hunks with `context` lines around each change.
/// Empty when the texts are equal.
pub fn unified(old: &str, new: &str, a: &str, b: &str, context: usize) -> String {
    let x: Vec<&str> = old.split_inclusive('\n').collect();
    let y: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = edit_script(&x, &y);
    if ops.iter().all(|op| matches!(op, Op::Same(..))) {
        return String::new();
    }
    let mut out = format!("--- {a}\n+++ {b}\n");
    // Indexes into `ops` of changed lines, grouped into hunks that share context.
    let changed: Vec<usize> = (0..ops.len())
        .filter(|&k| !matches!(ops[k], Op::Same(..)))
        .collect();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for &k in &changed {
        match groups.last_mut() {
            Some((_, end)) if k <= *end + 2 * context + 1 => *end = k,
            _ => groups.push((k, k)),
        }
    }
    for (first, last) in groups {
        let start = first.saturating_sub(context);
        let end = (last + context + 1).min(ops.len());
        let hunk = &ops[start..end];
        // Line numbers (1-based) where the hunk starts on each side.
        let (mut a0, mut b0) = (0, 0);
        for op in &ops[..start] {
            match op {
                Op::Same(..) => {
                    a0 += 1;
                    b0 += 1;
                }
                Op::Del(_) => a0 += 1,
                Op::Ins(_) => b0 += 1,
            }
        }
        let a_len = hunk.iter().filter(|o| !matches!(o, Op::Ins(_))).count();
        let b_len = hunk.iter().filter(|o| !matches!(o, Op::Del(_))).count();
        let range = |s: usize, n: usize| {
            if n == 1 {
                format!("{}", s + 1)
            } else if n == 0 {
                format!("{s},0")
            } else {
                format!("{},{n}", s + 1)
            }
        };
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(a0, a_len),
            range(b0, b_len)
        ));
        for op in hunk {
            let (sign, line) = match *op {
                Op::Same(i) => (' ', x[i]),
                Op::Del(i) => ('-', x[i]),
                Op::Ins(j) => ('+', y[j]),
            };
            out.push(sign);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Same(usize),
    Del(usize),
    Ins(usize),
}

/// The edit script from the longest common subsequence, deletions before insertions.
fn edit_script(x: &[&str], y: &[&str]) -> Vec<Op> {
    let (n, m) = (x.len(), y.len());
    // lcs[i][j]: LCS length of x[i..] and y[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            ops.push(Op::Same(i));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(Op::Del(i));
            i += 1;
        } else {
            ops.push(Op::Ins(j));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "a", "b", 3), "");
    }

    #[test]
    fn hunks_have_context_and_ranges() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 3\n", "line three\n")
            .replace("line 18\n", "")
            .replace("line 20\n", "line 20\nline 21\n");
        let d = unified(&old, &new, "a/f", "b/f", 3);
        assert_eq!(
            d,
            "--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n line 1\n line 2\n-line 3\n+line three\n line 4\n line 5\n line 6\n\
             @@ -15,6 +15,6 @@\n line 15\n line 16\n line 17\n-line 18\n line 19\n line 20\n+line 21\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn patch_applies_it() {
        // The real `patch` must turn the old text into the new one.
        let Some(patch) = crate::process::find("patch") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let old = "[project]\nname = \"x\"\n# comment\ndependencies = [\n  \"a\",\n  \"b\",\n]\n\n[tool.x]\nk = 1\n";
        let new = "[project]\nname = \"x\"\n# comment\ndependencies = [\n  \"a ; sys_platform == 'linux'\",\n]\n\n[tool.x]\nk = 1\n[tool.y]\nz = 2";
        std::fs::write(dir.path().join("f"), old).unwrap();
        std::fs::write(dir.path().join("p"), unified(old, new, "a/f", "b/f", 3)).unwrap();
        let out = std::process::Command::new(patch)
            .args(["-s", "-p1", "-i", "p"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(std::fs::read_to_string(dir.path().join("f")).unwrap(), new);
    }
}
