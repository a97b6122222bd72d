//! UI languages (French and English) and the message catalogue in `web/locales/*.toml`.
//!
//! The language of a request is, in order: the `amphi_lang` cookie set by the switch, the
//! user's saved preference, the best `Accept-Language` match, then `site.default_language`.

use rust_embed::RustEmbed;
use std::collections::HashMap;

#[derive(RustEmbed)]
#[folder = "web/locales/"]
struct Locales;

/// A language amphi's pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The best supported language of an `Accept-Language` header, by q-value then order.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (index, item) in header.split(',').enumerate().take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if !(q > 0.0 && q <= 1.0) {
                continue;
            }
            let Some(lang) = Lang::from_code(tag) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((best_q, best_index, _)) => q > best_q || (q == best_q && index < best_index),
            };
            if better {
                best = Some((q, index, lang));
            }
        }
        best.map(|(_, _, lang)| lang)
    }
}

/// Every UI string in every language.
#[derive(Debug)]
pub struct Catalog {
    messages: HashMap<Lang, HashMap<String, String>>,
}

impl Catalog {
    /// Loads `web/locales/{fr,en}.toml` (embedded in release builds, read from disk in debug).
    pub fn load() -> Result<Self, String> {
        let mut messages = HashMap::new();
        for lang in Lang::ALL {
            let name = format!("{}.toml", lang.code());
            let file = Locales::get(&name).ok_or_else(|| format!("missing web/locales/{name}"))?;
            let text =
                std::str::from_utf8(&file.data).map_err(|e| format!("web/locales/{name}: {e}"))?;
            let table: toml::Table =
                toml::from_str(text).map_err(|e| format!("web/locales/{name}: {e}"))?;
            let mut flat = HashMap::new();
            flatten("", &table, &mut flat);
            messages.insert(lang, flat);
        }
        Ok(Self { messages })
    }

    /// The message `key` in `lang` with `{name}` placeholders filled; falls back to English,
    /// then to the key itself (a test keeps both catalogues complete).
    pub fn get(&self, lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
        let text = self
            .messages
            .get(&lang)
            .and_then(|m| m.get(key))
            .or_else(|| self.messages.get(&Lang::En).and_then(|m| m.get(key)));
        let Some(text) = text else {
            return key.to_owned();
        };
        let mut out = text.clone();
        for (name, value) in args {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    /// The keys of one language, sorted (completeness tests).
    pub fn keys(&self, lang: Lang) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .messages
            .get(&lang)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&full, inner, out),
            toml::Value::String(text) => {
                out.insert(full, text.clone());
            }
            other => {
                out.insert(full, other.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_by_quality() {
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,fr;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("de;q=1, fr-CA;q=0.7, en;q=0.5"),
            Some(Lang::Fr)
        );
        assert_eq!(Lang::from_accept_language("de, it"), None);
        assert_eq!(
            Lang::from_accept_language("en;q=0, fr;q=0.1"),
            Some(Lang::Fr)
        );
        assert_eq!(Lang::from_accept_language("fr;q=abc"), Some(Lang::Fr));
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn both_catalogues_have_the_same_keys() {
        let catalog = Catalog::load().unwrap();
        assert_eq!(catalog.keys(Lang::Fr), catalog.keys(Lang::En));
        assert!(catalog.keys(Lang::En).len() > 20);
    }

    #[test]
    fn placeholders_are_filled() {
        let catalog = Catalog::load().unwrap();
        let text = catalog.get(Lang::En, "error.throttled", &[("minutes", "7")]);
        assert!(text.contains('7'), "{text}");
        assert!(!text.contains("{minutes}"), "{text}");
    }
}
