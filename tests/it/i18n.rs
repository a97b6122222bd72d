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
        let pieces: Vec<&str> = source.split("t(\"").collect();
        for (before, part) in pieces.iter().zip(pieces.iter().skip(1)) {
            // `t(` itself, not the end of `default(` or `format(`.
            if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let key = part.split('"').next().unwrap();
            // Keys completed in the template (`"meetings.field." ~ name`) are checked below.
            if key.ends_with('.') {
                continue;
            }
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
    let sections = [
        "error.",
        "login.",
        "account.",
        "nav.",
        "home.",
        "footer.",
        "meetings.",
    ];
    let mut checked = 0;
    let folders = ["src/web", "src/meetings"]
        .map(|f| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(f));
    for entry in folders.iter().flat_map(|f| std::fs::read_dir(f).unwrap()) {
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

/// Keys the meeting form builds from a field name, a weekday or a choice.
#[test]
fn every_meeting_form_key_is_translated() {
    use amphi::meetings::form::FIELDS;
    let catalog = Catalog::load().unwrap();
    for lang in [Lang::Fr, Lang::En] {
        let known = catalog.keys(lang);
        let mut keys: Vec<String> = FIELDS
            .iter()
            .map(|f| format!("meetings.field.{f}"))
            .collect();
        keys.extend((0..7).map(|d| format!("meetings.weekday.{d}")));
        keys.extend(
            ["none", "daily", "weekly", "monthly", "yearly"]
                .map(|r| format!("meetings.recurrence.{r}")),
        );
        keys.extend(["date_day", "nth_day"].map(|r| format!("meetings.monthly.{r}")));
        keys.extend(
            ["default", "ALWAYS_ACCEPT", "ALWAYS_DENY", "ASK_MODERATOR"]
                .map(|g| format!("meetings.guest.{g}")),
        );
        keys.extend(
            [
                "main",
                "dates",
                "recurring",
                "record",
                "webinar",
                "advanced",
            ]
            .map(|s| format!("meetings.form.{s}")),
        );
        keys.extend(["MODERATOR", "VIEWER"].map(|r| format!("admin.role.{r}")));
        keys.extend(
            ["daily", "weekly", "monthly", "yearly"]
                .iter()
                .flat_map(|f| [format!("invite.every.{f}"), format!("invite.every.{f}_1")]),
        );
        keys.extend(
            [
                "meetingName",
                "hasUserJoined",
                "recording",
                "participantCount",
                "listenerCount",
                "moderatorCount",
                "attendees",
            ]
            .map(|f| format!("info.field.{f}")),
        );
        for key in keys {
            assert!(known.contains(&key.as_str()), "{lang:?} lacks {key}");
        }
    }
}
