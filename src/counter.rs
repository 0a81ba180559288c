//! Counter declarations shared by every layer (DESIGN R16): `define_counters!` declares an
//! enum of reasons, each with a `stage.reason` name and a description, and [`Counts`] holds
//! plain counts of one such enum for single-threaded owners (the control plane, the NAT
//! policy). Depends on nothing in the crate, so `nat`, `dataplane` and `control` may all use
//! it. The dataplane's per-worker atomic blocks are in `dataplane::counters`.

/// Declares an enum of counter reasons with `COUNT`, `ALL`, `name()` and `description()`.
macro_rules! define_counters {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $var:ident = $key:literal => $desc:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $var,)* }
        impl $name {
            /// Number of variants.
            pub const COUNT: usize = [$($name::$var),*].len();
            /// Every variant, in declaration order (= index order).
            pub const ALL: [$name; Self::COUNT] = [$($name::$var),*];
            /// Counter name, `stage.reason`.
            pub const fn name(self) -> &'static str { match self { $($name::$var => $key,)* } }
            /// Human description.
            pub const fn description(self) -> &'static str { match self { $($name::$var => $desc,)* } }
        }
        impl $crate::counter::CounterEnum for $name {
            const ALL: &'static [Self] = &$name::ALL;
            fn index(self) -> usize { self as usize }
            fn name(self) -> &'static str { $name::name(self) }
            fn description(self) -> &'static str { $name::description(self) }
        }
    };
}

/// A counter enum declared with `define_counters!`.
pub trait CounterEnum: Copy + std::fmt::Debug + 'static {
    /// Every variant in index order.
    const ALL: &'static [Self];
    /// Position of the variant.
    fn index(self) -> usize;
    /// Counter name.
    fn name(self) -> &'static str;
    /// Human description.
    fn description(self) -> &'static str;
}

/// Plain counters for one enum, for single-threaded owners (the control plane).
#[derive(Debug, Clone)]
pub struct Counts<E: CounterEnum> {
    v: Vec<u64>,
    _e: std::marker::PhantomData<E>,
}

impl<E: CounterEnum> Default for Counts<E> {
    fn default() -> Self {
        Counts {
            v: vec![0; E::ALL.len()],
            _e: std::marker::PhantomData,
        }
    }
}

impl<E: CounterEnum> Counts<E> {
    /// Count one.
    pub fn inc(&mut self, e: E) {
        self.v[e.index()] += 1;
    }
    /// Count `n`.
    pub fn add(&mut self, e: E, n: u64) {
        self.v[e.index()] += n;
    }
    /// Value of one counter.
    pub fn get(&self, e: E) -> u64 {
        self.v[e.index()]
    }
    /// Non-zero counters as `(name, value, description)`.
    pub fn nonzero(&self) -> Vec<(&'static str, u64, &'static str)> {
        E::ALL
            .iter()
            .map(|e| (e.name(), self.get(*e), e.description()))
            .filter(|(_, v, _)| *v != 0)
            .collect()
    }
}

pub(crate) use define_counters;
