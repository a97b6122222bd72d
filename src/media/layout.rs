//! Layouts, kept as data in `pipelines/layouts/*.toml`: where the presentation (slides or the
//! screenshare) and the cameras go on a 1280×720 canvas. Placement is a pure function of the
//! layout and of what is on screen, so it is tested without a pipeline.

use serde::Deserialize;

/// The canvas layouts are written for.
pub const CANVAS: (u32, u32) = (1280, 720);

/// `[x, y, width, height]`.
pub type Rect = [u32; 4];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrangement {
    /// Side by side, as large as the area's height allows.
    Row,
    /// The smallest square grid that holds them.
    Grid,
}

/// A layout file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub name: String,
    #[serde(default)]
    pub main: Option<Rect>,
    #[serde(default)]
    pub cameras: Option<Rect>,
    #[serde(default = "row")]
    pub arrangement: Arrangement,
    pub max_cameras: usize,
}

fn row() -> Arrangement {
    Arrangement::Row
}

/// The layout of a webinar that names none.
pub const DEFAULT: &str = "presentation-pip";

/// The layouts shipped with amphi.
pub const BUILT_IN: [(&str, &str); 4] = [
    (
        "presentation-strip",
        include_str!("../../pipelines/layouts/presentation-strip.toml"),
    ),
    (
        "presentation-pip",
        include_str!("../../pipelines/layouts/presentation-pip.toml"),
    ),
    (
        "cameras",
        include_str!("../../pipelines/layouts/cameras.toml"),
    ),
    (
        "presentation",
        include_str!("../../pipelines/layouts/presentation.toml"),
    ),
];

impl Layout {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// A built-in layout by name.
    pub fn named(name: &str) -> Option<Self> {
        BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, text)| Self::parse(text).ok())
    }

    /// Where things go, scaled to an output of `size`: the presentation when there is one
    /// (and the layout shows it), then as many cameras as fit, in the order given (presenter
    /// first). With nothing to show, everything is `None` and the slate shows.
    pub fn place(&self, presentation: bool, cameras: usize, size: (u32, u32)) -> Placement {
        let scale = |r: Rect| -> Rect {
            [
                r[0] * size.0 / CANVAS.0,
                r[1] * size.1 / CANVAS.1,
                r[2] * size.0 / CANVAS.0,
                r[3] * size.1 / CANVAS.1,
            ]
        };
        let shown = cameras.min(self.max_cameras);
        let main = self.main.filter(|_| presentation);
        let camera_rects = match self.cameras {
            Some(area) if shown > 0 => {
                // Without a presentation, cameras take the whole canvas when the layout has
                // room for more than one (a strip alone would waste the frame).
                let area = if main.is_none() && self.main.is_some() && self.max_cameras > 1 {
                    [0, 0, CANVAS.0, CANVAS.1]
                } else {
                    area
                };
                let arrangement = if area == [0, 0, CANVAS.0, CANVAS.1] {
                    Arrangement::Grid
                } else {
                    self.arrangement
                };
                arrange(area, shown, arrangement)
            }
            _ => Vec::new(),
        };
        Placement {
            main: main.map(scale),
            cameras: camera_rects.into_iter().map(scale).collect(),
        }
    }
}

/// Rectangles for what is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub main: Option<Rect>,
    /// In the order of the cameras given; those that did not fit are left out.
    pub cameras: Vec<Rect>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.main.is_none() && self.cameras.is_empty()
    }
}

/// Cells of 16:9 inside `area`.
fn arrange(area: Rect, count: usize, arrangement: Arrangement) -> Vec<Rect> {
    let [x, y, w, h] = area;
    let (columns, rows) = match arrangement {
        Arrangement::Row => (count as u32, 1),
        Arrangement::Grid => {
            let columns = (1..).find(|c| c * c >= count as u32).unwrap_or(1);
            let rows = (count as u32).div_ceil(columns);
            (columns, rows)
        }
    };
    let (cell_w, cell_h) = (w / columns, h / rows);
    // The largest 16:9 picture in a cell.
    let (pic_w, pic_h) = if cell_w * 9 > cell_h * 16 {
        (cell_h * 16 / 9, cell_h)
    } else {
        (cell_w, cell_w * 9 / 16)
    };
    let used_w = pic_w * columns.min(count as u32);
    let left = x + (w - used_w.min(w)) / 2;
    (0..count as u32)
        .map(|i| {
            let (column, row) = (i % columns, i / columns);
            [
                left + column * pic_w,
                y + row * cell_h + (cell_h - pic_h) / 2,
                pic_w,
                pic_h,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_layout_parses() {
        for (name, text) in BUILT_IN {
            let layout = Layout::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(layout.name, name);
            for rect in layout.main.iter().chain(layout.cameras.iter()) {
                assert!(
                    rect[0] + rect[2] <= CANVAS.0 && rect[1] + rect[3] <= CANVAS.1,
                    "{name}"
                );
            }
        }
        assert!(Layout::named("nope").is_none());
        assert!(Layout::parse("name = \"x\"\nmax_cameras = 1\ncolour = 3").is_err());
    }

    #[test]
    fn strip_puts_cameras_under_the_presentation_presenter_first() {
        let layout = Layout::named("presentation-strip").unwrap();
        let p = layout.place(true, 2, CANVAS);
        assert_eq!(p.main, Some([128, 0, 1024, 576]));
        assert_eq!(p.cameras, vec![[384, 576, 256, 144], [640, 576, 256, 144]]);
        // Scaled to 360p.
        let small = layout.place(true, 1, (640, 360));
        assert_eq!(small.main, Some([64, 0, 512, 288]));
        assert_eq!(small.cameras, vec![[256, 288, 128, 72]]);
        // Seven cameras: five fit.
        assert_eq!(layout.place(true, 7, CANVAS).cameras.len(), 5);
    }

    #[test]
    fn without_a_presentation_cameras_fill_the_frame_and_with_nothing_the_slate_shows() {
        let layout = Layout::named("presentation-strip").unwrap();
        let p = layout.place(false, 1, CANVAS);
        assert_eq!(p.main, None);
        assert_eq!(p.cameras, vec![[0, 0, 1280, 720]]);
        let four = layout.place(false, 4, CANVAS);
        assert_eq!(
            four.cameras,
            vec![
                [0, 0, 640, 360],
                [640, 0, 640, 360],
                [0, 360, 640, 360],
                [640, 360, 640, 360]
            ]
        );
        assert!(layout.place(false, 0, CANVAS).is_empty());
    }

    #[test]
    fn pip_shows_only_the_presenter_and_presentation_only_no_camera() {
        let pip = Layout::named("presentation-pip").unwrap();
        let p = pip.place(true, 3, CANVAS);
        assert_eq!(p.main, Some([0, 0, 1280, 720]));
        assert_eq!(p.cameras, vec![[944, 531, 320, 180]]);
        let only = Layout::named("presentation").unwrap();
        assert_eq!(only.place(true, 3, CANVAS).cameras, Vec::<Rect>::new());
        assert!(
            only.place(false, 3, CANVAS).is_empty(),
            "the slate, not an empty frame"
        );
        let cameras = Layout::named("cameras").unwrap();
        assert_eq!(cameras.place(true, 1, CANVAS).main, None);
        assert_eq!(
            cameras.place(true, 1, CANVAS).cameras,
            vec![[0, 0, 1280, 720]]
        );
    }
}
