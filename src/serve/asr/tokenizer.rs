//! Moonshine's `tokenizer.bin`: the vocabulary as a list of byte strings, one per token id,
//! each preceded by its length (one byte, or two when the length is 128 or more, low 7 bits
//! first). Ids 0–2 are `<unk>`, `<s>`, `</s>`; the next 256 are the raw bytes (for text the
//! other pieces do not cover); the rest are SentencePiece pieces where `▁` marks a word start.

use std::path::Path;

/// The start-of-text token the decoder is primed with.
pub const BOS: i64 = 1;
/// The end-of-text token that stops decoding.
pub const EOS: i64 = 2;
/// Ids below this are control tokens and produce no text.
const FIRST_TEXT_TOKEN: usize = 3;
/// SentencePiece's word-start mark, U+2581.
const WORD_MARK: &str = "\u{2581}";

#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<Vec<u8>>,
}

/// One decoded word with the probabilities of the tokens that spelled it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedWord {
    pub text: String,
    pub token_probs: Vec<f32>,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Tokenizer, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Tokenizer::parse(&bytes).map_err(|e| format!("{} is damaged: {e}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Tokenizer, String> {
        let mut pieces = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let mut len = usize::from(bytes[i]);
            i += 1;
            if len >= 0x80 {
                let hi = *bytes.get(i).ok_or("a length is cut short")?;
                i += 1;
                len = (len & 0x7f) | (usize::from(hi) << 7);
            }
            let piece = bytes
                .get(i..i + len)
                .ok_or_else(|| format!("token {} runs past the end", pieces.len()))?;
            pieces.push(piece.to_vec());
            i += len;
        }
        if pieces.len() <= FIRST_TEXT_TOKEN + 256 {
            return Err(format!("only {} tokens", pieces.len()));
        }
        Ok(Tokenizer { pieces })
    }

    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The words spelled by `tokens`, each with its tokens' probabilities (`probs[i]` belongs
    /// to `tokens[i]`). Control tokens and ids outside the vocabulary are skipped.
    pub fn words(&self, tokens: &[i64], probs: &[f32]) -> Vec<DecodedWord> {
        let mut words: Vec<(Vec<u8>, Vec<f32>)> = Vec::new();
        let mark = WORD_MARK.as_bytes();
        for (k, &t) in tokens.iter().enumerate() {
            let Some(piece) = usize::try_from(t)
                .ok()
                .filter(|&t| t >= FIRST_TEXT_TOKEN)
                .and_then(|t| self.pieces.get(t))
            else {
                continue;
            };
            let p = probs.get(k).copied().unwrap_or(1.0);
            // A piece may hold several word starts (e.g. "▁▁"); each begins a new word.
            let mut rest = piece.as_slice();
            let mut first = true;
            loop {
                let starts_word = rest.starts_with(mark);
                if starts_word {
                    rest = &rest[mark.len()..];
                }
                let end = find(rest, mark).unwrap_or(rest.len());
                let chunk = &rest[..end];
                if starts_word || words.is_empty() {
                    words.push((Vec::new(), Vec::new()));
                }
                if let Some((text, ps)) = words.last_mut() {
                    text.extend_from_slice(chunk);
                    if first {
                        ps.push(p);
                        first = false;
                    }
                }
                rest = &rest[end..];
                if rest.is_empty() {
                    break;
                }
            }
        }
        words
            .into_iter()
            .filter_map(|(text, token_probs)| {
                let text = String::from_utf8_lossy(&text).trim().to_string();
                (!text.is_empty()).then_some(DecodedWord { text, token_probs })
            })
            .collect()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(extra: &[&str]) -> Tokenizer {
        let mut bytes = Vec::new();
        let mut push = |p: &[u8]| {
            bytes.push(p.len() as u8);
            bytes.extend_from_slice(p);
        };
        for p in ["<unk>", "<s>", "</s>"] {
            push(p.as_bytes());
        }
        for b in 0..=255u8 {
            push(&[b]);
        }
        for p in extra {
            push(p.as_bytes());
        }
        Tokenizer::parse(&bytes).unwrap()
    }

    #[test]
    fn pieces_join_into_words_with_their_probabilities() {
        let t = vocab(&["\u{2581}It", "\u{2581}wa", "s", "\u{2581}\u{2581}"]);
        let base = 259;
        let words = t.words(
            &[BOS, base, base + 1, base + 2, i64::from(b',') + 3, EOS],
            &[1.0, 0.9, 0.8, 0.5, 0.4, 1.0],
        );
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["It", "was,"]);
        assert_eq!(words[1].token_probs, [0.8, 0.5, 0.4]);
        // Raw byte tokens spell UTF-8 across tokens; unknown ids are skipped.
        let e_acute = [0xc3u8, 0xa9].map(|b| i64::from(b) + 3);
        let words = t.words(&[base, e_acute[0], e_acute[1], 99_999, -1], &[]);
        assert_eq!(words[0].text, "It\u{e9}");
    }

    #[test]
    fn damaged_files_are_refused() {
        assert!(Tokenizer::parse(&[5, b'a']).is_err());
        assert!(Tokenizer::parse(&[0x85]).is_err());
        assert!(Tokenizer::parse(&[]).is_err());
    }
}
