//! The ONE place that decides which document actions exist.
//!
//! The UI asks [`decide`] every frame and draws (or omits) Copy, Print and
//! Export and their shortcuts from its answer; nothing else looks at
//! `Rights` to enable an action.

use irm_core::Rights;

use crate::i18n::Msg;

/// Whether one action is available, and if not, why (a tooltip text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The action is allowed now.
    Allowed,
    /// The action is not allowed; the message says why.
    Denied(Msg),
}

impl Permit {
    /// Whether the action is allowed.
    pub fn allowed(self) -> bool {
        self == Self::Allowed
    }

    /// The tooltip saying why not, if denied.
    pub fn why_not(self) -> Option<Msg> {
        match self {
            Self::Allowed => None,
            Self::Denied(why) => Some(why),
        }
    }
}

/// The document actions and whether each exists right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    /// Selecting text, the Copy button and Ctrl+C (each copy is reported).
    pub copy: Permit,
    /// Printing.
    pub print: Permit,
    /// Saving a plaintext copy.
    pub export: Permit,
}

/// Decides the actions from the grant's effective rights and whether its
/// lease still holds. Without a live lease nothing is allowed, whatever
/// the rights say; `view` alone allows nothing beyond looking.
pub fn decide(rights: Rights, lease_live: bool) -> Actions {
    let permit = |right: Rights, missing: Msg| {
        if !lease_live {
            Permit::Denied(Msg::LeaseEnded)
        } else if rights.contains(Rights::VIEW | right) {
            Permit::Allowed
        } else {
            Permit::Denied(missing)
        }
    };
    Actions {
        copy: permit(Rights::COPY, Msg::NoCopyRight),
        print: permit(Rights::PRINT, Msg::NoPrintRight),
        export: permit(Rights::EXPORT, Msg::NoExportRight),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Permit = Permit::Allowed;
    const NO_COPY: Permit = Permit::Denied(Msg::NoCopyRight);
    const NO_PRINT: Permit = Permit::Denied(Msg::NoPrintRight);
    const NO_EXPORT: Permit = Permit::Denied(Msg::NoExportRight);
    const ENDED: Permit = Permit::Denied(Msg::LeaseEnded);

    #[test]
    fn rights_to_actions() {
        let v = Rights::VIEW;
        let table: [(Rights, bool, [Permit; 3]); 9] = [
            (v, true, [NO_COPY, NO_PRINT, NO_EXPORT]),
            (v | Rights::COPY, true, [A, NO_PRINT, NO_EXPORT]),
            (v | Rights::PRINT, true, [NO_COPY, A, NO_EXPORT]),
            (v | Rights::EXPORT, true, [NO_COPY, NO_PRINT, A]),
            (v | Rights::PROGRAM, true, [NO_COPY, NO_PRINT, NO_EXPORT]),
            (Rights::all(), true, [A, A, A]),
            // Rights without view are not a way to look at the file.
            (
                Rights::COPY | Rights::PRINT | Rights::EXPORT,
                true,
                [NO_COPY, NO_PRINT, NO_EXPORT],
            ),
            (Rights::all(), false, [ENDED, ENDED, ENDED]),
            (v, false, [ENDED, ENDED, ENDED]),
        ];
        for (rights, live, [copy, print, export]) in table {
            assert_eq!(
                decide(rights, live),
                Actions {
                    copy,
                    print,
                    export
                },
                "{rights:?} live={live}"
            );
        }
    }
}
