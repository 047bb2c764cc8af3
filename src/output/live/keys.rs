//! Keys while the live view runs. In raw mode Ctrl-C is a key, not a signal, so it is handled
//! here exactly as the signal handler would: the first one finishes the stream cleanly, the
//! second quits at once (exit 130).

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop taking input and finish the stream (q, Ctrl-C, Ctrl-D).
    Finish,
    /// End the current turn now (e, Enter).
    ForceEndTurn,
    /// Raise or lower eot_threshold by this much with a Configure (+ and -).
    AdjustEot(i8),
    /// Quit at once (Ctrl-C after the stream was asked to finish).
    Abort,
    None,
}

/// Maps a key to an action; `stopping` is set once a finish was asked for.
pub fn action(key: &KeyEvent, stopping: &mut bool) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') if ctrl => {
            if *stopping {
                Action::Abort
            } else {
                *stopping = true;
                Action::Finish
            }
        }
        KeyCode::Char('d') if ctrl => finish_once(stopping),
        KeyCode::Char('q' | 'Q') if !ctrl => finish_once(stopping),
        KeyCode::Char('e' | 'E') if !ctrl => Action::ForceEndTurn,
        KeyCode::Enter => Action::ForceEndTurn,
        KeyCode::Char('+' | '=') if !ctrl => Action::AdjustEot(1),
        KeyCode::Char('-' | '_') if !ctrl => Action::AdjustEot(-1),
        _ => Action::None,
    }
}

fn finish_once(stopping: &mut bool) -> Action {
    if *stopping {
        Action::None
    } else {
        *stopping = true;
        Action::Finish
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn ctrl_c_finishes_then_aborts() {
        let mut stopping = false;
        let c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&c, &mut stopping), Action::Finish);
        assert_eq!(action(&c, &mut stopping), Action::Abort);
    }

    #[test]
    fn q_finishes_once_and_ctrl_c_after_it_aborts() {
        let mut stopping = false;
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(action(&q, &mut stopping), Action::Finish);
        assert_eq!(action(&q, &mut stopping), Action::None);
        let c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&c, &mut stopping), Action::Abort);
    }

    #[test]
    fn e_and_enter_force_the_end_of_the_turn() {
        let mut stopping = false;
        for k in [
            key(KeyCode::Char('e'), KeyModifiers::NONE),
            key(KeyCode::Enter, KeyModifiers::NONE),
        ] {
            assert_eq!(action(&k, &mut stopping), Action::ForceEndTurn);
        }
        assert_eq!(
            action(&key(KeyCode::Char('x'), KeyModifiers::NONE), &mut stopping),
            Action::None
        );
        assert_eq!(
            action(&key(KeyCode::Char('+'), KeyModifiers::NONE), &mut stopping),
            Action::AdjustEot(1)
        );
        assert_eq!(
            action(&key(KeyCode::Char('-'), KeyModifiers::NONE), &mut stopping),
            Action::AdjustEot(-1)
        );
        assert!(!stopping);
    }
}
