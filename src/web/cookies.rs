//! Reading the `Cookie` header and writing `Set-Cookie` values.

use axum::http::{HeaderMap, HeaderValue, header};

/// The value of cookie `name` in the request, if any.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// Attributes of a cookie amphi sets.
#[derive(Debug, Clone, Copy)]
pub struct CookieSpec<'a> {
    pub name: &'a str,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: &'a str,
    /// `None`: session cookie; `Some(0)`: delete.
    pub max_age_seconds: Option<i64>,
}

/// A `Set-Cookie` header value. `value` must be a cookie-safe token (hex, language code).
pub fn set(spec: CookieSpec<'_>, value: &str) -> HeaderValue {
    let mut cookie = format!(
        "{}={}; Path=/; SameSite={}",
        spec.name, value, spec.same_site
    );
    if spec.http_only {
        cookie.push_str("; HttpOnly");
    }
    if spec.secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = spec.max_age_seconds {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; amphi_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=\"2\""));
        assert_eq!(get(&headers, "amphi_session").as_deref(), Some("abc"));
        assert_eq!(get(&headers, "b").as_deref(), Some("2"));
        assert_eq!(get(&headers, "c"), None);
    }

    #[test]
    fn set_cookie_has_flags() {
        let value = set(
            CookieSpec {
                name: "s",
                http_only: true,
                secure: true,
                same_site: "Lax",
                max_age_seconds: Some(60),
            },
            "v",
        );
        assert_eq!(
            value,
            "s=v; Path=/; SameSite=Lax; HttpOnly; Secure; Max-Age=60"
        );
    }
}
