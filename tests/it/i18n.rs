//! Every UI string used by a template exists in both languages.

use amphi::web::i18n::{Catalog, Lang};
use amphi::web::templates::Templates;

#[test]
fn every_template_key_is_translated() {
    let catalog = Catalog::load().unwrap();
    let known: Vec<&str> = catalog.keys(Lang::En);
    let mut used = 0;
    for name in Templates::names() {
        let source = Templates::source(&name).unwrap();
        for part in source.split("t(\"").skip(1) {
            let key = part.split('"').next().unwrap();
            used += 1;
            assert!(known.contains(&key), "{name} uses unknown key {key}");
        }
    }
    assert!(
        used > 20,
        "only {used} translated strings found in templates"
    );
}

#[test]
fn every_key_used_in_code_is_translated() {
    let catalog = Catalog::load().unwrap();
    let known = catalog.keys(Lang::Fr);
    let sections = ["error.", "login.", "account.", "nav.", "home.", "footer."];
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web");
    let mut checked = 0;
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap() == "i18n.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for literal in text.split('"').skip(1).step_by(2) {
            let looks_like_key = sections.iter().any(|s| literal.starts_with(s))
                && !literal.ends_with(".html")
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
            if looks_like_key {
                checked += 1;
                assert!(
                    known.contains(&literal),
                    "{} uses unknown key {literal}",
                    path.display()
                );
            }
        }
    }
    assert!(checked > 15, "{checked}");
}
