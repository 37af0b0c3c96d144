//! Text to speech: a typed notice becomes a WAV file through espeak-ng
//! (Debian package `espeak-ng`; `-v cmn` speaks Mandarin).
//!
//! The text goes to the program's standard input, never through a shell or
//! its arguments, so no notice can become an option or a command; SSML is not
//! enabled, so markup is read as text. The program is killed when it takes
//! longer than the configured timeout or when the request is dropped.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::LibrarySettings;

/// Why a notice could not be spoken.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The text is empty or only spaces.
    #[error("the text to speak is empty")]
    EmptyText,
    /// The text is longer than the configured limit.
    #[error("the text is {chars} characters; the limit is {limit}")]
    TooLong {
        /// Its length in characters.
        chars: usize,
        /// The limit (`library.tts_max_chars`).
        limit: usize,
    },
    /// The program is not installed.
    #[error("text to speech needs {command}, which is not installed (Debian package espeak-ng)")]
    Missing {
        /// The configured program.
        command: String,
    },
    /// The program could not be started for another reason.
    #[error("cannot start {command}")]
    Start {
        /// The configured program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The program ran longer than the timeout and was killed.
    #[error("{command} did not finish within {secs} s")]
    TimedOut {
        /// The configured program.
        command: String,
        /// The timeout.
        secs: u64,
    },
    /// The program failed.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The configured program.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The start of what it printed on standard error.
        stderr: String,
    },
}

/// Checks a notice's text against the limits before anything runs.
pub fn check_text(settings: &LibrarySettings, text: &str) -> Result<(), TtsError> {
    if text.trim().is_empty() {
        return Err(TtsError::EmptyText);
    }
    let chars = text.chars().count();
    if chars > settings.tts_max_chars {
        return Err(TtsError::TooLong { chars, limit: settings.tts_max_chars });
    }
    Ok(())
}

/// Speaks `text` into the WAV file at `out` (which it overwrites).
pub async fn speak(settings: &LibrarySettings, text: &str, out: &Path) -> Result<(), TtsError> {
    check_text(settings, text)?;
    let command = settings.tts_command.clone();
    let mut child = Command::new(&settings.tts_command)
        .arg("-v")
        .arg(&settings.tts_voice)
        .arg("-b")
        .arg("1") // UTF-8 input
        .arg("--stdin")
        .arg("-w")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => TtsError::Missing { command: command.clone() },
            _ => TtsError::Start { command: command.clone(), source },
        })?;
    let (Some(mut stdin), Some(mut stderr)) = (child.stdin.take(), child.stderr.take()) else {
        // Both were asked for as pipes above.
        return Err(TtsError::Start { command, source: std::io::Error::other("no pipes to the program") });
    };
    let input = text.as_bytes().to_vec();
    let run = async move {
        // A program that exits early closes its input; its status says why.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        let mut printed = Vec::new();
        let _ = (&mut stderr).take(4096).read_to_end(&mut printed).await;
        (child.wait().await, printed)
    };
    let secs = settings.tts_timeout.as_secs();
    let (status, printed) = tokio::time::timeout(settings.tts_timeout, run)
        .await
        .map_err(|_| TtsError::TimedOut { command: command.clone(), secs })?;
    let status = status.map_err(|source| TtsError::Start { command: command.clone(), source })?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&printed).split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(TtsError::Failed { command, status, stderr });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_checked_before_anything_runs() {
        let settings = LibrarySettings { tts_max_chars: 4, ..LibrarySettings::default() };
        assert!(matches!(check_text(&settings, " \n"), Err(TtsError::EmptyText)));
        let err = check_text(&settings, "请注意安全").expect_err("five characters");
        assert_eq!(err.to_string(), "the text is 5 characters; the limit is 4");
        assert!(check_text(&settings, "请注意").is_ok());
    }

    #[tokio::test]
    async fn a_missing_program_names_the_package() {
        let settings = LibrarySettings { tts_command: "/nonexistent/espeak-ng".into(), ..LibrarySettings::default() };
        let dir = tempfile::tempdir().expect("tempdir");
        let err = speak(&settings, "你好", &dir.path().join("out.wav")).await.expect_err("missing");
        assert!(matches!(err, TtsError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("Debian package espeak-ng"), "{err}");
    }
}
