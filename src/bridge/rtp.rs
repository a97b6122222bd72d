//! Just enough of RTP (RFC 3550) and the VP8 payload (RFC 7741) to know what a packet is:
//! its header fields, and whether it starts a VP8 keyframe (so the bridge asks for one until
//! it sees one).

/// The fixed RTP header fields amphi looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Where the payload starts.
    pub payload_offset: usize,
    /// Where it ends (before padding).
    pub payload_end: usize,
}

/// Reads an RTP header; `None` when the bytes are not an RTP packet.
pub fn header(packet: &[u8]) -> Option<Header> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0f);
    let mut offset = 12 + 4 * csrc;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(offset + 2..offset + 4)?;
        offset += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    if offset > end {
        return None;
    }
    Some(Header {
        payload_type: packet[1] & 0x7f,
        marker: packet[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload_offset: offset,
        payload_end: end,
    })
}

/// Whether this RTP packet carries the first partition of a VP8 keyframe.
pub fn starts_vp8_keyframe(packet: &[u8]) -> bool {
    header(packet)
        .is_some_and(|h| vp8_payload_is_keyframe(&packet[h.payload_offset..h.payload_end]))
}

/// The VP8 payload descriptor, then the payload header's P bit (0 on keyframes).
fn vp8_payload_is_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let start_of_partition = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start_of_partition || partition != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&extension) = payload.get(at) else {
            return false;
        };
        at += 1;
        if extension & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let Some(&picture) = payload.get(at) else {
                return false;
            };
            at += if picture & 0x80 != 0 { 2 } else { 1 };
        }
        if extension & 0x40 != 0 {
            at += 1;
        }
        if extension & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|b| b & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x80,
            0x60 | 0x80,
            0x12,
            0x34,
            0,
            0,
            0x10,
            0,
            0xde,
            0xad,
            0xbe,
            0xef,
        ];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_the_header() {
        let h = header(&packet(&[0x10, 0x00])).unwrap();
        assert_eq!(h.payload_type, 96);
        assert!(h.marker);
        assert_eq!(h.sequence, 0x1234);
        assert_eq!(h.timestamp, 0x1000);
        assert_eq!(h.ssrc, 0xdeadbeef);
        assert_eq!(h.payload_offset, 12);
        assert!(header(&[0x80; 11]).is_none());
        assert!(header(&[0x40; 20]).is_none(), "version 1");
    }

    #[test]
    fn skips_csrcs_extensions_and_padding() {
        // One CSRC, a one-word extension, two bytes of padding.
        let mut p = vec![0xb1, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        p.extend_from_slice(&[0, 0, 0, 9]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        p.extend_from_slice(&[0x10, 0x00, 0, 2]);
        let h = header(&p).unwrap();
        assert_eq!(h.payload_offset, 24);
        assert_eq!(h.payload_end, p.len() - 2);
        assert!(starts_vp8_keyframe(&p));
        let mut short = p.clone();
        short.truncate(18);
        assert!(header(&short).is_none());
    }

    #[test]
    fn tells_keyframes_from_the_rest() {
        assert!(starts_vp8_keyframe(&packet(&[0x10, 0x00])));
        assert!(!starts_vp8_keyframe(&packet(&[0x10, 0x01])), "interframe");
        assert!(
            !starts_vp8_keyframe(&packet(&[0x00, 0x00])),
            "not a partition start"
        );
        // Extended descriptor with a 15-bit picture id, as browsers and vp8enc send.
        assert!(starts_vp8_keyframe(&packet(&[
            0x90, 0x80, 0x81, 0x23, 0x00
        ])));
        assert!(!starts_vp8_keyframe(&packet(&[
            0x90, 0x80, 0x81, 0x23, 0x01
        ])));
        // 7-bit picture id, TL0PICIDX and TID/KEYIDX.
        assert!(starts_vp8_keyframe(&packet(&[
            0x90, 0xf0, 0x05, 0x01, 0x02, 0x00
        ])));
        assert!(!starts_vp8_keyframe(&packet(&[0x90, 0x80])), "truncated");
        assert!(!starts_vp8_keyframe(&packet(&[])));
    }
}
