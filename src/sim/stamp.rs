//! A wall-clock time drawn into a picture as blocks a program can read back after encoding
//! and decoding: 48 bits of milliseconds since the UNIX epoch in three rows of sixteen black
//! or white blocks at the top left of the luma plane, each row followed by its inverse so a
//! damaged or missing stamp reads as `None` instead of a wrong time.

/// Bits drawn (milliseconds since 1970 fit until the year 10889).
pub const BITS: u32 = 48;
const COLUMNS: usize = 16;
const ROWS: usize = 3;
const BLACK: u8 = 16;
const WHITE: u8 = 235;

/// Block size in pixels for a picture this wide.
fn block(width: usize) -> (usize, usize) {
    let w = (width / COLUMNS).max(4);
    (w, (w / 2).max(8))
}

/// Whether a picture is big enough to carry a stamp.
pub fn fits(width: usize, height: usize) -> bool {
    let (w, h) = block(width);
    width >= COLUMNS * w && height >= 2 * ROWS * h
}

fn bit(value: u64, index: usize) -> bool {
    (value >> (BITS as usize - 1 - index)) & 1 == 1
}

/// Draws `value` (its low 48 bits) into an 8-bit luma plane.
pub fn draw(luma: &mut [u8], stride: usize, width: usize, height: usize, value: u64) {
    if !fits(width, height) {
        return;
    }
    let (bw, bh) = block(width);
    for index in 0..BITS as usize {
        let (row, column) = (index / COLUMNS, index % COLUMNS);
        let on = bit(value, index);
        for (band, level) in [(2 * row, on), (2 * row + 1, !on)] {
            let shade = if level { WHITE } else { BLACK };
            for y in band * bh..(band + 1) * bh {
                let start = y * stride + column * bw;
                if let Some(line) = luma.get_mut(start..start + bw) {
                    line.fill(shade);
                }
            }
        }
    }
}

/// The mean of the middle half of a block.
fn mean(luma: &[u8], stride: usize, x0: usize, y0: usize, bw: usize, bh: usize) -> Option<u32> {
    let (mut sum, mut count) = (0u32, 0u32);
    for y in y0 + bh / 4..y0 + bh - bh / 4 {
        let start = y * stride + x0 + bw / 4;
        for &v in luma.get(start..start + bw - bw / 2)? {
            sum += u32::from(v);
            count += 1;
        }
    }
    (count > 0).then(|| sum / count)
}

/// Reads a stamp back; `None` when the picture carries none (or a damaged one).
pub fn read(luma: &[u8], stride: usize, width: usize, height: usize) -> Option<u64> {
    if !fits(width, height) {
        return None;
    }
    let (bw, bh) = block(width);
    let mut value = 0u64;
    for index in 0..BITS as usize {
        let (row, column) = (index / COLUMNS, index % COLUMNS);
        let plain = mean(luma, stride, column * bw, 2 * row * bh, bw, bh)?;
        let inverse = mean(luma, stride, column * bw, (2 * row + 1) * bh, bw, bh)?;
        if plain.abs_diff(inverse) < 64 {
            return None;
        }
        value = (value << 1) | u64::from(plain > inverse);
    }
    Some(value)
}

/// Milliseconds since the UNIX epoch now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_plane() {
        for (width, height, stride) in [
            (320, 180, 320),
            (640, 360, 640),
            (1280, 720, 1280),
            (322, 180, 324),
        ] {
            let mut plane = vec![90u8; stride * height];
            let value = 1_795_000_123_456u64;
            draw(&mut plane, stride, width, height, value);
            assert_eq!(
                read(&plane, stride, width, height),
                Some(value),
                "{width}x{height}"
            );
        }
    }

    #[test]
    fn survives_noise_and_refuses_garbage() {
        let (width, height) = (320, 180);
        let mut plane = vec![0u8; width * height];
        draw(&mut plane, width, width, height, 0xABCD_EF01_2345);
        for (i, v) in plane.iter_mut().enumerate() {
            // ±20 of deterministic noise, as a lossy codec leaves.
            *v = v.saturating_add((i * 7919 % 21) as u8).saturating_sub(10);
        }
        assert_eq!(read(&plane, width, width, height), Some(0xABCD_EF01_2345));
        let flat = vec![128u8; width * height];
        assert_eq!(read(&flat, width, width, height), None);
        assert_eq!(read(&plane[..1000], width, width, height), None);
        assert!(!fits(32, 16));
    }
}
