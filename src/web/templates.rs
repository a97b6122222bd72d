//! Server-rendered pages: minijinja templates from `web/templates` (embedded in release builds,
//! read from disk in debug builds) with a `t(key, name=value)` function for UI strings.

use super::i18n::{Catalog, Lang};
use minijinja::value::Kwargs;
use minijinja::{Environment, State, Value};
use rust_embed::RustEmbed;
use std::sync::Arc;

#[derive(RustEmbed)]
#[folder = "web/templates/"]
struct TemplateFiles;

/// The template environment and the catalogue it translates with.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    catalog: Arc<Catalog>,
}

impl Templates {
    pub fn load(catalog: Arc<Catalog>) -> Self {
        let mut env = Environment::new();
        // Debug output lists the template's variables (CSRF token, user): never in logs.
        env.set_debug(false);
        env.set_loader(|name| {
            Ok(TemplateFiles::get(name)
                .map(|file| String::from_utf8_lossy(&file.data).into_owned()))
        });
        let for_t = Arc::clone(&catalog);
        env.add_function(
            "t",
            move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let lang = state
                    .lookup("lang")
                    .and_then(|v| v.as_str().and_then(Lang::from_code))
                    .unwrap_or(Lang::En);
                let mut args: Vec<(String, String)> = Vec::new();
                for name in kwargs.args() {
                    let value: Value = kwargs.get(name)?;
                    args.push((name.to_owned(), value.to_string()));
                }
                let borrowed: Vec<(&str, &str)> =
                    args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                Ok(for_t.get(lang, key, &borrowed))
            },
        );
        Self { env, catalog }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog, shared with tasks that outlive a request.
    pub fn catalog_arc(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog)
    }

    /// Renders `name` with `context`; errors name the template, never the data.
    pub fn render(&self, name: &str, context: Value) -> Result<String, String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| format!("template {name}: {e}"))?;
        template
            .render(context)
            .map_err(|e| format!("template {name}: {e}"))
    }

    /// Names of every template file (tests).
    pub fn names() -> Vec<String> {
        TemplateFiles::iter().map(|n| n.into_owned()).collect()
    }

    /// A template's source (tests).
    pub fn source(name: &str) -> Option<String> {
        TemplateFiles::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned())
    }
}
