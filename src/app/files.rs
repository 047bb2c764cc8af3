//! Output files named on the command line, checked against the inputs before anything is
//! created: `--save-audio call.wav` for an input `call.wav` would truncate the recording
//! before it is read (as ffmpeg does, flux refuses: same device and inode, links followed).

use crate::error::FluxError;
use std::path::Path;

/// Where an input comes from, to compare outputs against.
pub(super) enum Input<'a> {
    /// A file by path.
    Path(&'a Path),
    /// Whatever stdin is: a redirected file (`< call.wav`) is a file like any other.
    Stdin,
}

/// Refuses `output` (named by `flag`) when it is one of `inputs`. An output that does not
/// exist yet cannot be an input; an input that cannot be examined is reported by its own
/// reader, so it is not an error here.
pub(super) fn refuse_overwriting_inputs(
    flag: &str,
    output: &Path,
    inputs: &[Input<'_>],
) -> Result<(), FluxError> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        let (same, named) = match input {
            Input::Path(p) if *p == Path::new("-") => (same_as_stdin(&out), "stdin".into()),
            Input::Path(p) => (
                std::fs::metadata(p).is_ok_and(|m| same_file(&m, &out)) || same_path(p, output),
                p.display().to_string(),
            ),
            Input::Stdin => (same_as_stdin(&out), "stdin".into()),
        };
        if same {
            return Err(FluxError::Usage(format!(
                "{flag} {} is the input {named}: writing it would destroy the audio before it \
                 is read; choose another file for {flag}",
                output.display()
            )));
        }
    }
    Ok(())
}

/// The same file reached through links or another spelling of its path.
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Elsewhere, the paths are compared after resolving links (see `refuse_overwriting_inputs`).
#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Whether stdin is the file `out` (a redirect such as `flux file - < call.wav`).
#[cfg(unix)]
fn same_as_stdin(out: &std::fs::Metadata) -> bool {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let Ok(fd) = stdin.as_fd().try_clone_to_owned() else {
        return false;
    };
    // The clone is closed when the File drops; stdin itself stays open.
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.is_file() && same_file(&m, out))
}

/// Without file identities to compare, stdin cannot be recognised as a file.
#[cfg(not(unix))]
fn same_as_stdin(_: &std::fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_is_refused_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("call.wav");
        std::fs::write(&input, b"RIFF").unwrap();
        let other = dir.path().join("other.wav");
        let inputs = [Input::Path(&input)];
        assert!(refuse_overwriting_inputs("--save-audio", &other, &inputs).is_ok());
        std::fs::write(&other, b"x").unwrap();
        assert!(refuse_overwriting_inputs("--save-audio", &other, &inputs).is_ok());
        let err = refuse_overwriting_inputs("--save-audio", &input, &inputs).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("is the input"), "{err}");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.wav");
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert!(refuse_overwriting_inputs("--save-audio", &link, &inputs).is_err());
            let hard = dir.path().join("hard.wav");
            std::fs::hard_link(&input, &hard).unwrap();
            assert!(refuse_overwriting_inputs("--save-audio", &hard, &inputs).is_err());
        }
        // Another spelling of the same path is still the same file.
        let relative = dir.path().join(".").join("call.wav");
        assert!(refuse_overwriting_inputs("--save-audio", &relative, &inputs).is_err());
    }
}
