//! Keys while the live view runs, as requests. In raw mode Ctrl-C is a key, not a signal, so
//! it is reported as an interrupt and the controller treats it exactly as it treats SIGINT:
//! the first finishes the stream cleanly, the second quits at once (exit 130).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop taking input and finish the stream (q, Ctrl-D); only the first one counts.
    Finish,
    /// Ctrl-C: finish the first time, quit at once after that.
    Interrupt,
    /// End the current turn now (e, Enter).
    ForceEndTurn,
    /// Raise or lower eot_threshold by this many steps with a Configure (+ and -).
    AdjustEot(i8),
    None,
}

/// Maps a key to what it asks for.
pub fn action(key: &KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => Action::Interrupt,
        KeyCode::Char('d') if ctrl => Action::Finish,
        KeyCode::Char('q' | 'Q') if !ctrl => Action::Finish,
        KeyCode::Char('e' | 'E') if !ctrl => Action::ForceEndTurn,
        KeyCode::Enter => Action::ForceEndTurn,
        KeyCode::Char('+' | '=') if !ctrl => Action::AdjustEot(1),
        KeyCode::Char('-' | '_') if !ctrl => Action::AdjustEot(-1),
        _ => Action::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn keys_map_to_requests() {
        let c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&c), Action::Interrupt);
        for k in [
            key(KeyCode::Char('q'), KeyModifiers::NONE),
            key(KeyCode::Char('d'), KeyModifiers::CONTROL),
        ] {
            assert_eq!(action(&k), Action::Finish);
        }
        for k in [
            key(KeyCode::Char('e'), KeyModifiers::NONE),
            key(KeyCode::Enter, KeyModifiers::NONE),
        ] {
            assert_eq!(action(&k), Action::ForceEndTurn);
        }
        assert_eq!(
            action(&key(KeyCode::Char('x'), KeyModifiers::NONE)),
            Action::None
        );
        assert_eq!(
            action(&key(KeyCode::Char('+'), KeyModifiers::NONE)),
            Action::AdjustEot(1)
        );
        assert_eq!(
            action(&key(KeyCode::Char('-'), KeyModifiers::NONE)),
            Action::AdjustEot(-1)
        );
        let mut release = key(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(action(&release), Action::None);
    }
}
