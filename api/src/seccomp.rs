//! A seccomp profile in Docker's format (what `--security-opt
//! seccomp=<file>` reads and a service's `Privileges.Seccomp.Profile`
//! carries): a default action, the architectures (`archMap`), and rules
//! that may depend on the container's capabilities, the architecture and
//! the kernel version (`includes`/`excludes`). The worker turns it into
//! the OCI runtime spec's `linux.seccomp` for the container at hand;
//! managers only check it ([`Profile::parse`]) when a service is created
//! or updated, so a bad profile is refused before any task exists.
//!
//! Unknown fields are refused rather than ignored: a misspelt key would
//! otherwise silently weaken the filter.

use serde::{Deserialize, Serialize};

/// The whole profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Old form: the architectures as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// Docker's form: a native architecture and the ones it also runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<Syscall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Accepted only to be refused by name: Shoal has no seccomp agent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listener_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listener_metadata: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<String>,
}

/// One rule: the calls it names, what happens to them, and when it applies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Syscall {
    /// Old form, a single call; `names` is the current one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The rule applies only if all of these hold...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Filter>,
    /// ...and none of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Filter>,
}

/// A condition on one argument of the call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// When a rule applies: the container has all these capabilities, runs on
/// one of these architectures (Go's names: `amd64`, `arm64`...), on a
/// kernel at least this version (`"4.8"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub caps: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub min_kernel: String,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
];

pub const OPERATORS: &[&str] =
    &["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"];

pub const ARCHITECTURES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
];

pub const FLAGS: &[&str] =
    &["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"];

/// `"4.8"` → (4, 8).
pub fn parse_kernel_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl Profile {
    /// Parses and checks a profile; the error says what is wrong and where.
    pub fn parse(json: &[u8]) -> Result<Profile, String> {
        let p: Profile = serde_json::from_slice(json).map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
        p.validate()?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(format!("invalid seccomp profile: {m}"));
        if !ACTIONS.contains(&self.default_action.as_str()) {
            return bad(format!("unknown defaultAction {:?}", self.default_action));
        }
        if !self.listener_path.is_empty() || !self.listener_metadata.is_empty() {
            return bad("listenerPath is not supported: Shoal has no seccomp notify agent".into());
        }
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return bad("use either 'architectures' or 'archMap'".into());
        }
        let known_arch = |a: &str| ARCHITECTURES.contains(&a);
        for a in
            self.architectures.iter().chain(self.arch_map.iter().flat_map(|m| std::iter::once(&m.architecture).chain(&m.sub_architectures)))
        {
            if !known_arch(a) {
                return bad(format!("unknown architecture {a:?}"));
            }
        }
        for f in &self.flags {
            if !FLAGS.contains(&f.as_str()) {
                return bad(format!("unknown flag {f:?}"));
            }
        }
        for (i, s) in self.syscalls.iter().enumerate() {
            let at = |m: String| bad(format!("syscalls[{i}]: {m}"));
            if !s.name.is_empty() && !s.names.is_empty() {
                return at("use either 'name' or 'names'".into());
            }
            if s.name.is_empty() && s.names.is_empty() {
                return at("no syscall names".into());
            }
            for n in std::iter::once(&s.name).filter(|n| !n.is_empty()).chain(&s.names) {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                    return at(format!("invalid syscall name {n:?}"));
                }
            }
            if !ACTIONS.contains(&s.action.as_str()) {
                return at(format!("unknown action {:?}", s.action));
            }
            if s.errno_ret.is_some() && s.action != "SCMP_ACT_ERRNO" && s.action != "SCMP_ACT_TRACE" {
                return at(format!("errnoRet is only used with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {}", s.action));
            }
            for a in &s.args {
                if a.index > 5 {
                    return at(format!("argument index {} is out of range (0-5)", a.index));
                }
                if !OPERATORS.contains(&a.op.as_str()) {
                    return at(format!("unknown operator {:?}", a.op));
                }
            }
            for f in s.includes.iter().chain(s.excludes.iter()) {
                if !f.min_kernel.is_empty() && parse_kernel_version(&f.min_kernel).is_none() {
                    return at(format!("invalid minKernel {:?}: want major.minor", f.min_kernel));
                }
                for c in &f.caps {
                    if !c.starts_with("CAP_") {
                        return at(format!("invalid capability {c:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_form_and_refuses_what_it_cannot_apply() {
        let ok = br#"{
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}, "comment": "no namespaces"},
                {"name": "ptrace", "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}
            ]
        }"#;
        let p = Profile::parse(ok).unwrap();
        assert_eq!(p.syscalls[1].args[0].op, "SCMP_CMP_MASKED_EQ");
        assert!(p.arch_map[1].sub_architectures.is_empty());
        let err = |s: &str| Profile::parse(s.as_bytes()).unwrap_err();
        assert!(err("{").starts_with("decoding seccomp profile failed"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscals": []}"#).contains("unknown field `syscals`"));
        assert!(err(r#"{"defaultAction": "ALLOW"}"#).contains("unknown defaultAction \"ALLOW\""));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}"#).contains("listenerPath"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#)
            .contains("either 'architectures' or 'archMap'"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86"]}"#).contains("unknown architecture"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}"#)
            .contains("syscalls[0]: unknown action \"SCMP_ACT_NOTIFY\""));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#)
            .contains("argument index 6"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 0, "op": "EQ"}]}]}"#)
            .contains("unknown operator"));
        assert!(err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}"#
        )
        .contains("either 'name' or 'names'"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["Read;"], "action": "SCMP_ACT_ERRNO"}]}"#)
            .contains("invalid syscall name"));
        assert!(err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#
        )
        .contains("errnoRet"));
        assert!(err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}"#)
            .contains("invalid minKernel"));
        assert_eq!(parse_kernel_version("6.18"), Some((6, 18)));
    }
}
