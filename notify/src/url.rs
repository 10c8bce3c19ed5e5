//! The webhook URL as a secret: [`WebhookUrl`].
//!
//! A Mattermost incoming-webhook URL (`https://chat.example.com/hooks/<key>`) is a bearer
//! credential: whoever knows it can post to the channel. So the raw string is only handed out
//! through [`WebhookUrl::expose_secret`], and every other rendering (Display, Debug, error
//! messages) replaces the key, any query string, fragment and password with `***`.

use std::fmt;

use crate::error::UrlError;

/// What replaces secret parts of a URL in everything we print.
const MASK: &str = "***";

/// Longest URL we accept; real webhook URLs are about 60 bytes.
const MAX_URL_LEN: usize = 4096;

/// A Mattermost incoming-webhook URL whose secret parts never appear in Display, Debug or errors.
///
/// The secret parts are the last path segment (the hook key in `/hooks/<key>`), the query
/// string, the fragment and the password of any `user:password@` prefix.
///
/// ```
/// use notify::WebhookUrl;
/// let url: WebhookUrl = "https://chat.example.com/hooks/xr4jzd7p3bfqmqk1nbbc1w8s6a".parse()?;
/// assert_eq!(url.to_string(), "https://chat.example.com/hooks/***");
/// assert!(!format!("{url:?}").contains("xr4jzd7p"));
/// # Ok::<(), notify::UrlError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WebhookUrl {
    raw: String,
    redacted: String,
    /// Substrings of `raw` that must never be printed, longest first.
    secrets: Vec<String>,
}

impl WebhookUrl {
    /// Parses and checks a webhook URL: `http` or `https`, a host, no whitespace or control
    /// characters. Surrounding whitespace (a trailing newline from a file or env var) is trimmed.
    pub fn parse(input: &str) -> Result<WebhookUrl, UrlError> {
        let raw = input.trim();
        if raw.is_empty() {
            return Err(UrlError::Empty);
        }
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong {
                len: raw.len(),
                max: MAX_URL_LEN,
            });
        }
        let Some((scheme, rest)) = raw.split_once("://") else {
            return Err(UrlError::MissingScheme {
                url: mask_all_but_prefix(raw),
            });
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            // The scheme itself is not secret, and it is what the user needs to see.
            return Err(UrlError::UnsupportedScheme {
                scheme: sanitize(scheme, 16),
            });
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let mut secrets = Vec::new();
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() || host.starts_with(':') {
            return Err(UrlError::MissingHost);
        }
        if let Some(position) = raw.find(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::InvalidCharacter { position });
        }
        let redacted_userinfo = match userinfo {
            None => String::new(),
            Some(u) => match u.split_once(':') {
                Some((user, password)) => {
                    push_secret(&mut secrets, password);
                    format!("{user}:{MASK}@")
                }
                None => format!("{u}@"),
            },
        };

        // Split the tail into path, query and fragment.
        let query_start = tail.find(['?', '#']).unwrap_or(tail.len());
        let (path, after_path) = tail.split_at(query_start);
        let mut redacted_path = String::new();
        let segments: Vec<&str> = path.split('/').collect();
        // The key is the last non-empty segment; everything before it is routing.
        let key_index = segments.iter().rposition(|s| !s.is_empty());
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                redacted_path.push('/');
            }
            if Some(i) == key_index {
                push_secret(&mut secrets, segment);
                redacted_path.push_str(MASK);
            } else {
                redacted_path.push_str(segment);
            }
        }
        let mut redacted_after = String::new();
        if let Some(stripped) = after_path.strip_prefix('?') {
            let (query, fragment) = match stripped.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (stripped, None),
            };
            push_secret(&mut secrets, query);
            redacted_after.push('?');
            redacted_after.push_str(MASK);
            if let Some(f) = fragment {
                push_secret(&mut secrets, f);
                redacted_after.push('#');
                redacted_after.push_str(MASK);
            }
        } else if let Some(fragment) = after_path.strip_prefix('#') {
            push_secret(&mut secrets, fragment);
            redacted_after.push('#');
            redacted_after.push_str(MASK);
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let redacted =
            format!("{scheme}://{redacted_userinfo}{host}{redacted_path}{redacted_after}");
        Ok(WebhookUrl {
            raw: raw.to_string(),
            redacted,
            secrets,
        })
    }

    /// The full URL, key included. Only the HTTP transport should call this; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }

    /// The URL with its secret parts replaced by `***` (the same as `Display`).
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// Returns `text` with every occurrence of this URL or of its secret parts masked.
    ///
    /// Used on anything that came from outside (HTTP library errors, response bodies) before it
    /// goes into an error message, because those may echo the URL back.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.redacted);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }
}

fn push_secret(secrets: &mut Vec<String>, s: &str) {
    if !s.is_empty() && s != MASK {
        secrets.push(s.to_string());
    }
}

/// For a string that did not even parse as a URL: show a short prefix so the user recognises it,
/// and nothing that might be the key.
fn mask_all_but_prefix(s: &str) -> String {
    let prefix: String = s.chars().take(8).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 8 {
        format!("{prefix}{MASK}")
    } else {
        MASK.to_string()
    }
}

fn sanitize(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

impl std::str::FromStr for WebhookUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookUrl::parse(s)
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookUrl").field(&self.redacted).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mattermost_hook_key_is_masked() {
        let u = WebhookUrl::parse("https://chat.example.com/hooks/abcdefghij1234567890abcdef\n")
            .unwrap();
        assert_eq!(u.to_string(), "https://chat.example.com/hooks/***");
        assert_eq!(
            format!("{u:?}"),
            "WebhookUrl(\"https://chat.example.com/hooks/***\")"
        );
        assert_eq!(
            u.expose_secret(),
            "https://chat.example.com/hooks/abcdefghij1234567890abcdef"
        );
    }

    #[test]
    fn port_password_query_and_fragment_are_handled() {
        let u =
            WebhookUrl::parse("http://bot:s3cretpw@127.0.0.1:8065/hooks/key123456?token=zzz#frag")
                .unwrap();
        assert_eq!(
            u.to_string(),
            "http://bot:***@127.0.0.1:8065/hooks/***?***#***"
        );
        let msg = format!("POST {} failed; token=zzz s3cretpw", u.expose_secret());
        let scrubbed = u.scrub(&msg);
        assert_eq!(
            scrubbed,
            "POST http://bot:***@127.0.0.1:8065/hooks/***?***#*** failed; *** ***"
        );
    }

    #[test]
    fn trailing_slash_still_masks_the_key() {
        let u = WebhookUrl::parse("https://h/hooks/thekey123/").unwrap();
        assert_eq!(u.to_string(), "https://h/hooks/***/");
        let u = WebhookUrl::parse("https://h").unwrap();
        assert_eq!(u.to_string(), "https://h");
    }

    #[test]
    fn bad_urls_are_rejected_without_echoing_them() {
        assert!(matches!(WebhookUrl::parse("  "), Err(UrlError::Empty)));
        let e = WebhookUrl::parse("chat.example.com/hooks/supersecretkey").unwrap_err();
        assert!(matches!(e, UrlError::MissingScheme { .. }));
        assert!(!e.to_string().contains("supersecretkey"), "{e}");
        let e = WebhookUrl::parse("ftp://h/hooks/supersecretkey").unwrap_err();
        assert!(e.to_string().contains("ftp"), "{e}");
        assert!(matches!(
            WebhookUrl::parse("https:///hooks/k"),
            Err(UrlError::MissingHost)
        ));
        assert!(matches!(
            WebhookUrl::parse("https://:80/hooks/k"),
            Err(UrlError::MissingHost)
        ));
        let e = WebhookUrl::parse("https://h/hooks/a b").unwrap_err();
        assert!(
            matches!(e, UrlError::InvalidCharacter { position: 17 }),
            "{e:?}"
        );
        let long = format!("https://h/{}", "a".repeat(5000));
        assert!(matches!(
            WebhookUrl::parse(&long),
            Err(UrlError::TooLong { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn key_never_shows(
            host in "[a-z]{1,12}(\\.[a-z]{2,6}){0,2}",
            port in proptest::option::of(1u16..),
            prefix in "(/[a-z]{1,8}){0,2}",
            key in "[A-Za-z0-9_-]{8,40}",
            query in proptest::option::of("[A-Za-z0-9=&]{6,20}"),
        ) {
            // Keys are random 26-char ids in Mattermost; make sure ours cannot hide in the host.
            prop_assume!(!host.contains(&key) && !prefix.contains(&key));
            prop_assume!(!matches!(&query, Some(q) if host.contains(q.as_str())));
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let q = query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
            let raw = format!("https://{host}{port}{prefix}/hooks/{key}{q}");
            let url = WebhookUrl::parse(&raw).unwrap();
            prop_assert_eq!(url.expose_secret(), raw.as_str());
            for shown in [url.to_string(), format!("{url:?}"), url.scrub(&format!("error talking to {raw}: {key}"))] {
                prop_assert!(!shown.contains(&key), "{} leaks {}", shown, key);
                if let Some(q) = &query {
                    prop_assert!(!shown.contains(q.as_str()), "{} leaks {}", shown, q);
                }
                prop_assert!(shown.contains(&host));
            }
        }
    }
}
