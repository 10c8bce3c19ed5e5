//! `os`: `node_os_info` and `node_os_version` from os-release under rootfs.

use crate::collector::{Collector, Sink};
use crate::error::Error;
use crate::os_release;
use crate::root::{read_text, Root};

pub(crate) struct Os;

const FILES: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// `major.minor` of `VERSION_ID` as a number, node_exporter style
/// (`^[0-9]+\.?[0-9]*`); 0 when absent.
pub(crate) fn version_number(version_id: &str) -> f64 {
    let b = version_id.as_bytes();
    let mut end = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if end == 0 {
        return 0.0;
    }
    if b.get(end) == Some(&b'.') {
        end += 1;
        end += b[end..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    version_id[..end].trim_end_matches('.').parse().unwrap_or(0.0)
}

impl Collector for Os {
    fn name(&self) -> &'static str {
        "os"
    }

    fn collect(&self, root: &Root, out: &mut Sink) -> Result<(), Error> {
        let mut last_err = None;
        let mut fields = None;
        for f in FILES {
            match read_text(&root.root_path(f)) {
                Ok(text) => {
                    fields = Some(os_release::parse(&text));
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some(m) = fields else {
            return Err(last_err.unwrap_or(Error::NoData { collector: "os", reason: "no os-release".into() }));
        };
        let g = |k: &str| m.get(k).map(String::as_str).unwrap_or("");
        out.gauge(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
            &[
                ("build_id", g("BUILD_ID")),
                ("id", g("ID")),
                ("id_like", g("ID_LIKE")),
                ("image_id", g("IMAGE_ID")),
                ("image_version", g("IMAGE_VERSION")),
                ("name", g("NAME")),
                ("pretty_name", g("PRETTY_NAME")),
                ("variant", g("VARIANT")),
                ("variant_id", g("VARIANT_ID")),
                ("version", g("VERSION")),
                ("version_codename", g("VERSION_CODENAME")),
                ("version_id", g("VERSION_ID")),
            ],
            1.0,
        );
        let v = version_number(g("VERSION_ID"));
        if v > 0.0 {
            out.gauge(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
                &[("id", g("ID")), ("id_like", g("ID_LIKE")), ("name", g("NAME"))],
                v,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_number("20.04"), 20.04);
        assert_eq!(version_number("12"), 12.0);
        assert_eq!(version_number("3.18.4"), 3.18);
        assert_eq!(version_number("rolling"), 0.0);
        assert_eq!(version_number(""), 0.0);
    }
}
