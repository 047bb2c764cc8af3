//! `flux listen --stdin --duration SECONDS`: a source that ends after a given amount of audio,
//! counted in sample frames (not wall time), so a capture from a pipe is capped exactly like
//! a microphone capture.

use crate::audio::{AudioError, Block, Source, SourceInfo};

pub(super) struct Capped<S> {
    pub inner: S,
    /// Frames still allowed through.
    left: u64,
}

impl<S: Source> Capped<S> {
    pub fn new(inner: S, seconds: f64) -> Capped<S> {
        let rate = f64::from(inner.info().sample_rate);
        Capped {
            left: (seconds * rate).round() as u64,
            inner,
        }
    }
}

impl<S: Source> Source for Capped<S> {
    fn info(&self) -> &SourceInfo {
        self.inner.info()
    }

    fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
        if self.left == 0 {
            return Ok(None);
        }
        let Some(mut block) = self.inner.next_block()? else {
            return Ok(None);
        };
        let frames = block.frames() as u64;
        if frames > self.left {
            let keep = self.left as usize * usize::from(block.channels);
            block.truncate(keep);
        }
        self.left -= frames.min(self.left);
        Ok(Some(block))
    }

    fn recycle(&mut self, block: Block) {
        self.inner.recycle(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ramp {
        info: SourceInfo,
        blocks: usize,
    }

    impl Source for Ramp {
        fn info(&self) -> &SourceInfo {
            &self.info
        }
        fn next_block(&mut self) -> Result<Option<Block>, AudioError> {
            if self.blocks == 0 {
                return Ok(None);
            }
            self.blocks -= 1;
            Ok(Some(Block::from_f32(vec![0.5; 2 * 300], 2, 1000)))
        }
    }

    #[test]
    fn stops_after_the_frames_asked_for_mid_block() {
        let info = SourceInfo {
            sample_rate: 1000,
            channels: 2,
            total_frames: None,
            description: String::new(),
        };
        let mut capped = Capped::new(Ramp { info, blocks: 10 }, 0.75);
        let mut frames = 0;
        while let Some(b) = capped.next_block().unwrap() {
            assert_eq!(b.samples.len() % 2, 0, "whole frames only");
            frames += b.frames();
        }
        assert_eq!(frames, 750);
        assert!(capped.next_block().unwrap().is_none());
        assert_eq!(capped.inner.blocks, 7, "no block read past the cap");
    }
}
