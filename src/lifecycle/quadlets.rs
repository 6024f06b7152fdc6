//! podman's `.quadlets` format (`podman quadlet install app.quadlets`, podman 5.6): several
//! Quadlet files in one, separated by lines that hold only `---`, each section naming its file
//! with a `# FileName=NAME` comment. When NAME has no Quadlet extension, the section's type group
//! (`[Container]`, `[Volume]`, ... `[Artifact]`) gives it.

use std::fmt;

use super::adapter;

/// One section of a `.quadlets` file: the Quadlet file it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The file name (`web.container`), a plain name without `/`.
    pub name: String,
    /// The section's lines, each ending in `\n`.
    pub text: String,
    /// The 1-based line of the `.quadlets` file where the section starts.
    pub line: usize,
}

/// Why a `.quadlets` file cannot be split; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    /// The first line of the section at fault.
    pub line: usize,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

impl std::error::Error for SplitError {}

/// Splits `text` into its sections, in order; blank sections are skipped.
pub fn split(text: &str) -> Result<Vec<Section>, SplitError> {
    let mut out = Vec::new();
    let mut start = 1;
    let mut section = String::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim() == "---" {
            push(&mut out, std::mem::take(&mut section), start)?;
            start = i + 2;
        } else {
            section.push_str(l);
            section.push('\n');
        }
    }
    push(&mut out, section, start)?;
    Ok(out)
}

fn push(out: &mut Vec<Section>, text: String, line: usize) -> Result<(), SplitError> {
    if text.trim().is_empty() {
        return Ok(());
    }
    let err = |message: String| SplitError { line, message };
    let name = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix('#')
                .map(str::trim)
                .and_then(|l| l.strip_prefix("FileName="))
        })
        .map(str::trim)
        .ok_or_else(|| err("section without a \"# FileName=NAME\" line".to_owned()))?;
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(err(format!(
            "FileName={name} must be a plain, non-empty file name"
        )));
    }
    let name = if adapter::is_quadlet_name(name) {
        name.to_owned()
    } else {
        let ext = text
            .lines()
            .find_map(|l| adapter::kind_of_group(l.trim().strip_prefix('[')?.strip_suffix(']')?))
            .ok_or_else(|| {
                err(format!(
                    "cannot tell the kind of {name}: no [Container], [Volume], [Network], [Kube], \
                     [Pod], [Image], [Build] or [Artifact] group"
                ))
            })?;
        format!("{name}.{ext}")
    };
    out.push(Section { name, text, line });
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_named_by_their_file_name_or_their_group() {
        let text = "# FileName=web\n[Container]\nImage=x\n---\n# FileName=data.volume\n[Volume]\n\
                    ---\n# FileName=model\n[Artifact]\nArtifact=quay.io/x/y:1\n";
        let s = split(text).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["web.container", "data.volume", "model.artifact"]);
        assert_eq!(s[1].line, 5);
        assert_eq!(s[1].text, "# FileName=data.volume\n[Volume]\n");
    }

    #[test]
    fn sections_without_a_usable_name_are_refused_with_their_line() {
        assert_eq!(split("[Container]\n").unwrap_err().line, 1);
        let e =
            split("# FileName=a.volume\n[Volume]\n---\n# FileName=../x.container\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("plain"), "{e}");
        assert!(split("# FileName=\n[Volume]\n").is_err());
        assert!(split("# FileName=x\n[Service]\n")
            .unwrap_err()
            .message
            .contains("kind of x"));
        assert!(split("\n---\n\n").unwrap().is_empty());
    }
}
