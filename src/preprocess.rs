//! Photos to network inputs: decode PNG or JPEG with the `image` crate, crop the centre,
//! resize to the network's resolution, normalise per the model's preset, lay out as NCHW.

use std::path::Path;

use crate::error::{Error, Result};
use crate::spec::Shape;
use crate::tensor::Tensor;

/// Per-channel normalisation: `(pixel · scale − mean[c]) / std[c]` for RGB pixels read as
/// 0–255 integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Multiplies the 0–255 pixel first (1 keeps 0–255, 1/255 maps to 0–1).
    pub scale: f32,
    /// Subtracted per RGB channel, after scaling.
    pub mean: [f32; 3],
    /// Divides per RGB channel, last.
    pub std: [f32; 3],
}

impl Normalization {
    /// EfficientNet-Lite (TensorFlow's lite release and its PyTorch port): `(x − 127) / 128`
    /// on 0–255.
    pub const EFFICIENTNET_LITE: Self = Self {
        scale: 1.0,
        mean: [127.0; 3],
        std: [128.0; 3],
    };
    /// torchvision's ImageNet models: 0–1, then mean (0.485, 0.456, 0.406), std (0.229,
    /// 0.224, 0.225).
    pub const IMAGENET: Self = Self {
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

/// How a photo becomes an input: optionally a centre square crop, then a resize
/// (Catmull–Rom, i.e. bicubic) to `resolution × resolution`, then normalisation.
///
/// [`Preprocess::efficientnet`] resizes the whole photo (its aspect ratio is not kept), as the
/// EfficientNet-Lite PyTorch checkpoint's users feed it; [`Preprocess::torchvision`] is
/// torchvision's resize to 256 and centre crop of 224 (crop 224/256 = 0.875 of the shorter
/// side). The choice matters for photos near a class boundary: scikit-image's `chelsea.png`
/// is 285 (Egyptian cat, p = 0.77) resized whole and 282 (tiger cat, 0.39, against 0.36 for
/// 285) centre-cropped to 0.875, in this crate and in ONNX Runtime alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// Output height and width in pixels.
    pub resolution: usize,
    /// Fraction of the shorter side kept by a centre square crop, in (0, 1]; `None` resizes
    /// the whole photo.
    pub crop: Option<f64>,
    /// Normalisation after resizing.
    pub normalization: Normalization,
}

/// The largest photo accepted, in pixels per side and decoded bytes: larger files are refused
/// before decoding ([`Error::BadFile`]), so a hostile header cannot ask for gigabytes.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// See [`MAX_IMAGE_SIDE`].
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;

impl Preprocess {
    /// EfficientNet-Lite at `resolution`: the whole photo resized, `(x − 127) / 128`.
    pub fn efficientnet(resolution: usize) -> Self {
        Self {
            resolution,
            crop: None,
            normalization: Normalization::EFFICIENTNET_LITE,
        }
    }

    /// torchvision's evaluation at `resolution`: crop 0.875, ImageNet normalisation.
    pub fn torchvision(resolution: usize) -> Self {
        Self {
            resolution,
            crop: Some(0.875),
            normalization: Normalization::IMAGENET,
        }
    }

    /// Decodes the PNG or JPEG at `path` and makes a `[1, 3, r, r]` input of it.
    ///
    /// # Errors
    /// [`Error::BadFile`] when the file cannot be read, is of no supported format, is
    /// truncated or corrupt, or is larger than [`MAX_IMAGE_SIDE`] / [`MAX_IMAGE_BYTES`]; the
    /// errors of [`Preprocess::image`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Tensor> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| bad_image(path, e.to_string()))?;
        self.decode(&bytes).map_err(|e| match e {
            Error::BadFile { reason, .. } => bad_image(path, reason),
            other => other,
        })
    }

    /// [`Preprocess::open`] for an encoded image held in memory.
    ///
    /// # Errors
    /// As [`Preprocess::open`].
    pub fn decode(&self, bytes: &[u8]) -> Result<Tensor> {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad_image(Path::new("<bytes>"), e.to_string()))?;
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_IMAGE_SIDE);
        limits.max_image_height = Some(MAX_IMAGE_SIDE);
        limits.max_alloc = Some(MAX_IMAGE_BYTES);
        reader.limits(limits);
        let decoded = reader
            .decode()
            .map_err(|e| bad_image(Path::new("<bytes>"), e.to_string()))?;
        self.image(&decoded.to_rgb8())
    }

    /// Makes a `[1, 3, r, r]` input of a decoded RGB image.
    ///
    /// # Errors
    /// [`Error::Zero`] for a zero resolution or an empty image, [`Error::InvalidArgument`]
    /// for a crop outside (0, 1] or a resolution above [`MAX_IMAGE_SIDE`].
    pub fn image(&self, rgb: &image::RgbImage) -> Result<Tensor> {
        let r = self.resolution;
        if r == 0 {
            return Err(Error::Zero {
                what: "preprocess resolution",
            });
        }
        if r > MAX_IMAGE_SIDE as usize {
            return Err(Error::InvalidArgument {
                what: "preprocess resolution",
                reason: format!("{r} pixels is more than the {MAX_IMAGE_SIDE} accepted"),
            });
        }
        let (w, h) = rgb.dimensions();
        if w == 0 || h == 0 {
            return Err(Error::Zero { what: "image side" });
        }
        let crop = match self.crop {
            None => rgb.clone(),
            Some(f) if f > 0.0 && f <= 1.0 => {
                let side = ((f64::from(w.min(h)) * f).round() as u32).clamp(1, w.min(h));
                let (x0, y0) = ((w - side) / 2, (h - side) / 2);
                image::imageops::crop_imm(rgb, x0, y0, side, side).to_image()
            }
            Some(f) => {
                return Err(Error::InvalidArgument {
                    what: "centre crop",
                    reason: format!("{f} is not in (0, 1]"),
                })
            }
        };
        let size = r as u32; // ≤ MAX_IMAGE_SIDE
        let resized =
            image::imageops::resize(&crop, size, size, image::imageops::FilterType::CatmullRom);
        let norm = self.normalization;
        let plane = r * r;
        let mut data = vec![0f32; 3 * plane];
        for (i, px) in resized.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = (f32::from(px[c]) * norm.scale - norm.mean[c]) / norm.std[c];
            }
        }
        Tensor::new(Shape::new(1, 3, r, r), data)
    }
}

fn bad_image(path: &Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        what: "image",
        file: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Softmax of `logits`, computed in `f64` around the maximum.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let exps: Vec<f64> = logits.iter().map(|&v| f64::from(v - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// Indices of the `k` largest values, largest first (ordered by `f32::total_cmp`; ties: lower
/// index first).
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_photo_gives_normalised_planes_in_rgb_order() {
        let rgb = image::RgbImage::from_pixel(30, 20, image::Rgb([255, 127, 0]));
        for pre in [Preprocess::efficientnet(7), Preprocess::torchvision(7)] {
            let x = pre.image(&rgb).unwrap();
            assert_eq!(x.shape(), Shape::new(1, 3, 7, 7));
            let n = pre.normalization;
            for (c, v) in [255.0f32, 127.0, 0.0].into_iter().enumerate() {
                let want = (v * n.scale - n.mean[c]) / n.std[c];
                let plane = &x.data()[c * 49..(c + 1) * 49];
                assert!(
                    plane.iter().all(|&p| (p - want).abs() < 1e-6),
                    "{c}: {plane:?}"
                );
            }
        }
    }

    #[test]
    fn bad_settings_and_bytes_give_errors() {
        let rgb = image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]));
        let mut pre = Preprocess::torchvision(4);
        pre.crop = Some(0.0);
        assert!(matches!(
            pre.image(&rgb),
            Err(Error::InvalidArgument { .. })
        ));
        pre.crop = Some(f64::NAN);
        assert!(matches!(
            pre.image(&rgb),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            Preprocess::efficientnet(0).image(&rgb),
            Err(Error::Zero { .. })
        ));
        let huge = Preprocess::efficientnet(MAX_IMAGE_SIDE as usize + 1);
        assert!(matches!(
            huge.image(&rgb),
            Err(Error::InvalidArgument { .. })
        ));
        for bytes in [
            &b""[..],
            b"\x89PNG\r\n\x1a\n",
            b"\xff\xd8\xff\xe0 truncated jpeg",
        ] {
            assert!(matches!(
                Preprocess::efficientnet(8).decode(bytes),
                Err(Error::BadFile { .. })
            ));
        }
    }

    #[test]
    fn softmax_and_top_k() {
        let p = softmax(&[1000.0, 1000.0, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6 && p[2] == 0.0);
        assert_eq!(top_k(&[0.1, 0.7, 0.2, 0.7], 3), [1, 3, 2]);
    }
}
