//! VXLAN network identifiers: one per overlay network, unique in the
//! cluster, from 4096 up (below that Docker leaves room for VLAN-sized IDs),
//! at most 2^24 - 1.

use std::collections::BTreeMap;

pub const FIRST_VNI: u32 = 4096;
pub const LAST_VNI: u32 = (1 << 24) - 1;

/// The lowest VNI from 4096 that no network holds.
pub fn next_free<V>(taken: &BTreeMap<u32, V>) -> Option<u32> {
    let mut want = FIRST_VNI;
    for &v in taken.range(FIRST_VNI..).map(|(v, _)| v) {
        if v != want {
            break;
        }
        want += 1;
    }
    (want <= LAST_VNI).then_some(want)
}

/// A VNI asked for with `--opt com.docker.network.driver.overlay.vxlanid_list=N`.
pub fn parse_requested(value: &str) -> Result<u32, String> {
    let first = value.split(',').next().unwrap_or("").trim();
    match first.parse::<u32>() {
        Ok(v) if (1..=LAST_VNI).contains(&v) && !value.contains(',') => Ok(v),
        _ => Err(format!("invalid VXLAN ID {value:?}: give one number from 1 to {LAST_VNI}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_from_4096() {
        let mut taken = BTreeMap::new();
        assert_eq!(next_free(&taken), Some(4096));
        taken.insert(4096, "ingress");
        taken.insert(4098, "b");
        taken.insert(100, "custom");
        assert_eq!(next_free(&taken), Some(4097));
        taken.insert(4097, "a");
        assert_eq!(next_free(&taken), Some(4099));
        assert_eq!(parse_requested("5000"), Ok(5000));
        assert!(parse_requested("5000,5001").is_err());
        assert!(parse_requested("0").is_err());
        assert!(parse_requested("16777216").is_err());
    }
}
