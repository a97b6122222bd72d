//! Who may do what with a meeting: Esup-Pod's permission rules written once, as a pure
//! function of who asks, what meeting, and the site's setting. Every page and API route asks
//! here; the table test below is the specification.

use std::collections::BTreeSet;

/// Named permissions (seeded in the database, granted to users or permission groups).
pub mod perm {
    pub const ADD: &str = "meeting.add_meeting";
    pub const CHANGE: &str = "meeting.change_meeting";
    pub const DELETE: &str = "meeting.delete_meeting";
    pub const VIEW: &str = "meeting.view_meeting";
    pub const END: &str = "meeting.end_meeting";
}

/// Who is asking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// `None` for an anonymous visitor.
    pub user_id: Option<i64>,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Permission codenames held directly or through groups.
    pub perms: BTreeSet<String>,
    /// Access groups (ids) the user belongs to.
    pub groups: BTreeSet<i64>,
    /// May make webinars: a superuser, a member of an access group named in
    /// `webinar.affiliations`, or of the `webinar.admin_group` permission group (Pod's
    /// `can_manage_webinar`).
    pub webinar_capable: bool,
}

impl Actor {
    pub fn anonymous() -> Self {
        Actor::default()
    }

    fn has(&self, codename: &str) -> bool {
        self.is_superuser || self.perms.contains(codename)
    }

    fn is(&self, id: i64) -> bool {
        self.user_id == Some(id)
    }
}

/// The facts of a meeting the rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeetingFacts {
    pub owner_id: i64,
    pub additional_owners: BTreeSet<i64>,
    pub is_personal: bool,
    pub is_restricted: bool,
    /// Access groups the meeting is restricted to (empty: none).
    pub groups: BTreeSet<i64>,
}

impl MeetingFacts {
    fn owned_by(&self, actor: &Actor) -> bool {
        actor.is(self.owner_id)
            || actor
                .user_id
                .is_some_and(|id| self.additional_owners.contains(&id))
    }
}

/// What someone wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See "My meetings" (and the menu entry).
    List,
    /// Create a meeting.
    Add,
    /// Give a meeting another owner than oneself.
    ChooseOwner,
    Edit,
    Delete,
    JoinAsModerator,
    JoinAsViewer,
    Invite,
    /// The meeting information modal (`getMeetingInfo`).
    Info,
    End,
    ViewRecordings,
    DeleteRecording,
    UploadRecording,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Anonymous and the action needs an account: send to the login page.
    Login,
    /// Refused, with the reason to show.
    Deny(Denial),
}

/// Why an action is refused, as a sentence key of the UI catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// "Access to meetings is restricted to staff; contact us."
    StaffOnly,
    /// "You cannot access this meeting."
    NoAccess,
    /// "Only the owner can edit a personal meeting room."
    PersonalRoomOwnerOnly,
    /// "A personal meeting room cannot be deleted."
    PersonalRoomUndeletable,
    /// "You are not allowed to do this."
    NotAllowed,
}

impl Denial {
    /// The catalog key of the sentence shown.
    pub fn message_key(self) -> &'static str {
        match self {
            Denial::StaffOnly => "meetings.denied.staff_only",
            Denial::NoAccess => "meetings.denied.no_access",
            Denial::PersonalRoomOwnerOnly => "meetings.denied.personal_owner_only",
            Denial::PersonalRoomUndeletable => "meetings.denied.personal_undeletable",
            Denial::NotAllowed => "meetings.denied.not_allowed",
        }
    }
}

/// Site settings the rules read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// Pod's `RESTRICT_EDIT_MEETING_ACCESS_TO_STAFF_ONLY`.
    pub restrict_edit_to_staff: bool,
}

fn allow_if(condition: bool, denial: Denial) -> Decision {
    if condition {
        Decision::Allow
    } else {
        Decision::Deny(denial)
    }
}

/// Decides `action` by `actor` on `meeting` (`None` for actions on no meeting: list, add).
pub fn decide(
    actor: &Actor,
    meeting: Option<&MeetingFacts>,
    action: Action,
    settings: Settings,
) -> Decision {
    // Managing meetings needs an account, and staff status where the site says so.
    let managing = !matches!(action, Action::JoinAsViewer);
    if managing && actor.user_id.is_none() {
        return Decision::Login;
    }
    let staff_gate = matches!(
        action,
        Action::List | Action::Add | Action::Edit | Action::ChooseOwner
    );
    if staff_gate && settings.restrict_edit_to_staff && !actor.is_staff && !actor.is_superuser {
        return Decision::Deny(Denial::StaffOnly);
    }
    let Some(meeting) = meeting else {
        return match action {
            Action::List | Action::Add => Decision::Allow,
            Action::ChooseOwner => allow_if(actor.has(perm::ADD), Denial::NotAllowed),
            _ => Decision::Deny(Denial::NotAllowed),
        };
    };
    let owner = actor.is(meeting.owner_id);
    let owners = meeting.owned_by(actor);
    match action {
        Action::List | Action::Add => Decision::Allow,
        Action::ChooseOwner => allow_if(actor.has(perm::ADD), Denial::NotAllowed),
        Action::Edit if meeting.is_personal => allow_if(owner, Denial::PersonalRoomOwnerOnly),
        Action::Edit => allow_if(owners || actor.has(perm::CHANGE), Denial::NotAllowed),
        Action::Delete if meeting.is_personal => Decision::Deny(Denial::PersonalRoomUndeletable),
        Action::Delete => allow_if(owner || actor.has(perm::DELETE), Denial::NotAllowed),
        // Pod: only owners start and moderate; a superuser is not special here.
        Action::JoinAsModerator => allow_if(owners, Denial::NotAllowed),
        Action::JoinAsViewer => viewer_access(actor, meeting),
        Action::Invite => allow_if(owners || actor.has(perm::DELETE), Denial::NotAllowed),
        // Pod refuses additional owners here although they moderate the meeting; amphi lets
        // them see who is in it (docs/ref/pod-differences.md).
        Action::Info => allow_if(owners || actor.has(perm::DELETE), Denial::NotAllowed),
        Action::End => allow_if(owner || actor.has(perm::END), Denial::NotAllowed),
        Action::ViewRecordings | Action::UploadRecording => {
            allow_if(owners || actor.has(perm::VIEW), Denial::NotAllowed)
        }
        // Pod only hides the button and re-checks the view rule; amphi enforces it.
        Action::DeleteRecording => allow_if(owner || actor.has(perm::DELETE), Denial::NotAllowed),
    }
}

/// Pod's `get_meeting_access`: open meetings admit anyone, restricted ones authenticated users,
/// and meetings with groups only members of one of them. Owners always get in.
fn viewer_access(actor: &Actor, meeting: &MeetingFacts) -> Decision {
    if meeting.owned_by(actor) {
        return Decision::Allow;
    }
    let needs_account = meeting.is_restricted || !meeting.groups.is_empty();
    if !needs_account {
        return Decision::Allow;
    }
    if actor.user_id.is_none() {
        return Decision::Login;
    }
    if meeting.groups.is_empty() {
        return Decision::Allow;
    }
    allow_if(!meeting.groups.is_disjoint(&actor.groups), Denial::NoAccess)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: i64 = 1;
    const CO_OWNER: i64 = 2;
    const MEMBER: i64 = 3;
    const OTHER: i64 = 4;
    const ADMIN: i64 = 5;
    const DELEGATE: i64 = 6;
    const GROUP: i64 = 10;

    fn actor(id: i64) -> Actor {
        let mut actor = Actor {
            user_id: Some(id),
            ..Actor::default()
        };
        match id {
            ADMIN => {
                actor.is_superuser = true;
                actor.is_staff = true;
            }
            DELEGATE => {
                actor.perms = [perm::ADD, perm::CHANGE, perm::DELETE, perm::VIEW, perm::END]
                    .map(str::to_owned)
                    .into();
            }
            MEMBER => {
                actor.groups = [GROUP].into();
            }
            _ => {}
        }
        actor
    }

    fn meeting(personal: bool, restricted: bool, groups: bool) -> MeetingFacts {
        MeetingFacts {
            owner_id: OWNER,
            additional_owners: [CO_OWNER].into(),
            is_personal: personal,
            is_restricted: restricted,
            groups: if groups {
                [GROUP].into()
            } else {
                BTreeSet::new()
            },
        }
    }

    const A: Decision = Decision::Allow;
    const L: Decision = Decision::Login;
    const N: Decision = Decision::Deny(Denial::NotAllowed);

    /// Columns: anonymous, owner, additional owner, group member, other user, superuser,
    /// user holding every meeting permission.
    #[test]
    fn the_matrix_on_an_ordinary_meeting() {
        let m = meeting(false, false, false);
        let table: &[(Action, [Decision; 7])] = &[
            (Action::Edit, [L, A, A, N, N, A, A]),
            (Action::Delete, [L, A, N, N, N, A, A]),
            (Action::JoinAsModerator, [L, A, A, N, N, N, N]),
            (Action::JoinAsViewer, [A, A, A, A, A, A, A]),
            (Action::Invite, [L, A, A, N, N, A, A]),
            (Action::Info, [L, A, A, N, N, A, A]),
            (Action::End, [L, A, N, N, N, A, A]),
            (Action::ViewRecordings, [L, A, A, N, N, A, A]),
            (Action::UploadRecording, [L, A, A, N, N, A, A]),
            (Action::DeleteRecording, [L, A, N, N, N, A, A]),
            (Action::ChooseOwner, [L, N, N, N, N, A, A]),
        ];
        check(&m, table, Settings::default());
    }

    fn check(m: &MeetingFacts, table: &[(Action, [Decision; 7])], settings: Settings) {
        let actors = [
            Actor::anonymous(),
            actor(OWNER),
            actor(CO_OWNER),
            actor(MEMBER),
            actor(OTHER),
            actor(ADMIN),
            actor(DELEGATE),
        ];
        for (action, expected) in table {
            for (who, want) in actors.iter().zip(expected) {
                assert_eq!(
                    decide(who, Some(m), *action, settings),
                    *want,
                    "{action:?} by {:?}",
                    who.user_id
                );
            }
        }
    }

    #[test]
    fn personal_rooms() {
        let m = meeting(true, false, false);
        let own = Decision::Deny(Denial::PersonalRoomOwnerOnly);
        let never = Decision::Deny(Denial::PersonalRoomUndeletable);
        check(
            &m,
            &[
                (Action::Edit, [L, A, own, own, own, own, own]),
                (
                    Action::Delete,
                    [L, never, never, never, never, never, never],
                ),
            ],
            Settings::default(),
        );
    }

    #[test]
    fn viewer_access_rules() {
        let no = Decision::Deny(Denial::NoAccess);
        check(
            &meeting(false, true, false),
            &[(Action::JoinAsViewer, [L, A, A, A, A, A, A])],
            Settings::default(),
        );
        // With groups, only members (and owners) get in; superusers are not special.
        check(
            &meeting(false, false, true),
            &[(Action::JoinAsViewer, [L, A, A, A, no, no, no])],
            Settings::default(),
        );
        check(
            &meeting(false, true, true),
            &[(Action::JoinAsViewer, [L, A, A, A, no, no, no])],
            Settings::default(),
        );
    }

    #[test]
    fn staff_only_setting() {
        let staff_only = Settings {
            restrict_edit_to_staff: true,
        };
        let mut staff = actor(OTHER);
        staff.is_staff = true;
        let denied = Decision::Deny(Denial::StaffOnly);
        for action in [Action::List, Action::Add] {
            assert_eq!(decide(&actor(OWNER), None, action, staff_only), denied);
            assert_eq!(decide(&staff, None, action, staff_only), A);
            assert_eq!(decide(&actor(OWNER), None, action, Settings::default()), A);
            assert_eq!(decide(&Actor::anonymous(), None, action, staff_only), L);
        }
        let m = meeting(false, false, false);
        assert_eq!(
            decide(&actor(OWNER), Some(&m), Action::Edit, staff_only),
            denied
        );
        // Joining is unaffected.
        assert_eq!(
            decide(&actor(OWNER), Some(&m), Action::JoinAsModerator, staff_only),
            A
        );
        assert_eq!(
            decide(&actor(OTHER), Some(&m), Action::JoinAsViewer, staff_only),
            A
        );
    }
}
