//! Typed handles on the load balancer's maps (see `vip-ebpf/src/lb.rs`), one method per
//! change.

use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuValues};
use vip_common::{
    LbCounters, LbFlow, LbFlowKey, LbReal, LbService, LbServiceKey, MAX_LB_REALS, MAX_LB_SERVICES,
    MaglevTable, maps, table_index,
};

use super::{DataplaneError, Result, tables::map_err};

pub struct LbMaps {
    services: HashMap<MapData, LbServiceKey, LbService>,
    tables: Array<MapData, MaglevTable>,
    reals: Array<MapData, LbReal>,
    flows: HashMap<MapData, LbFlowKey, LbFlow>,
    service_stats: PerCpuArray<MapData, LbCounters>,
    real_stats: PerCpuArray<MapData, LbCounters>,
    active: Array<MapData, u32>,
}

impl LbMaps {
    /// `get` hands out the load balancer's own maps, `get_shared` a second handle on the
    /// two the responder reads too (`LB_SERVICES`, `LB_ACTIVE`).
    pub(super) fn build(
        mut get: impl FnMut(&'static str) -> Result<aya::maps::Map>,
        mut get_shared: impl FnMut(&'static str) -> Result<aya::maps::Map>,
    ) -> Result<Self> {
        Ok(Self {
            services: get_shared(maps::LB_SERVICES)?
                .try_into()
                .map_err(map_err(maps::LB_SERVICES))?,
            tables: get(maps::LB_TABLES)?
                .try_into()
                .map_err(map_err(maps::LB_TABLES))?,
            reals: get(maps::LB_REALS)?
                .try_into()
                .map_err(map_err(maps::LB_REALS))?,
            flows: get(maps::LB_FLOWS)?
                .try_into()
                .map_err(map_err(maps::LB_FLOWS))?,
            service_stats: get(maps::LB_SERVICE_STATS)?
                .try_into()
                .map_err(map_err(maps::LB_SERVICE_STATS))?,
            real_stats: get(maps::LB_REAL_STATS)?
                .try_into()
                .map_err(map_err(maps::LB_REAL_STATS))?,
            active: get_shared(maps::LB_ACTIVE)?
                .try_into()
                .map_err(map_err(maps::LB_ACTIVE))?,
        })
    }

    /// Adds or replaces a service entry (or a VIP's per-port marker). The service's
    /// table half in use is whatever `value.table` says: write its table first
    /// ([`LbMaps::write_table`]) when the service is new.
    pub fn set_service(&mut self, key: LbServiceKey, value: LbService) -> Result<()> {
        check_service_id(value.id)?;
        self.services
            .insert(key, value, 0)
            .map_err(map_err("writing a load-balanced service"))?;
        self.set_active(true)
    }

    /// Removes a service entry; absent is fine. The last one gone, TCP and UDP stop
    /// paying for the service lookup.
    pub fn remove_service(&mut self, key: &LbServiceKey) -> Result<()> {
        super::tables::ignore_missing(self.services.remove(key))
            .map_err(map_err("removing a load-balanced service"))?;
        let any = self.services.keys().next().is_some();
        self.set_active(any)
    }

    /// Whether the responder looks packets up among the services (`LB_ACTIVE`).
    fn set_active(&mut self, on: bool) -> Result<()> {
        self.active
            .set(0, u32::from(on), 0)
            .map_err(map_err("switching the service lookup"))
    }

    pub fn active(&self) -> bool {
        self.active.get(&0, 0).is_ok_and(|v| v != 0)
    }

    pub fn service(&self, key: &LbServiceKey) -> Option<LbService> {
        self.services.get(key, 0).ok()
    }

    pub fn services(&self) -> Result<Vec<(LbServiceKey, LbService)>> {
        self.services
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing load-balanced services"))
    }

    /// Writes `table` into half `half` of service `id` (not the one in use, unless the
    /// service is not live yet).
    pub fn write_table(&mut self, id: u32, half: u32, table: &MaglevTable) -> Result<()> {
        check_service_id(id)?;
        self.tables
            .set(table_index(id, half), table, 0)
            .map_err(map_err("writing a Maglev table"))
    }

    pub fn table(&self, id: u32, half: u32) -> Result<MaglevTable> {
        check_service_id(id)?;
        self.tables
            .get(&table_index(id, half), 0)
            .map_err(map_err("reading a Maglev table"))
    }

    /// Moves the service at `key` to `table`: written into the half not in use, then
    /// one write of the service entry flips to it, so a packet sees the old table or the
    /// new one, never a mix. The service's flags are kept (a previous table marked with
    /// [`LbMaps::set_previous`] stays marked). Returns the half now in use.
    pub fn install_table(&mut self, key: &LbServiceKey, table: &MaglevTable) -> Result<u32> {
        let mut svc = self
            .services
            .get(key, 0)
            .map_err(map_err("reading a load-balanced service"))?;
        let next = (svc.table + 1) & 1;
        self.write_table(svc.id, next, table)?;
        svc.table = next;
        self.services
            .insert(key, svc, 0)
            .map_err(map_err("flipping a service to its new table"))?;
        Ok(next)
    }

    /// Marks (or unmarks) the half of the service not in use as its previous table:
    /// while marked, a TCP segment without SYN of a flow the program does not know
    /// follows that table (`vip_common::LB_F_PREVIOUS`). Nothing when the service is gone
    /// or already so.
    pub fn set_previous(&mut self, key: &LbServiceKey, on: bool) -> Result<()> {
        let Some(mut svc) = self.service(key) else {
            return Ok(());
        };
        let flags = if on {
            svc.flags | vip_common::LB_F_PREVIOUS
        } else {
            svc.flags & !vip_common::LB_F_PREVIOUS
        };
        if flags == svc.flags {
            return Ok(());
        }
        svc.flags = flags;
        self.services
            .insert(key, svc, 0)
            .map_err(map_err("marking a service's previous table"))
    }

    pub fn set_real(&mut self, id: u32, real: LbReal) -> Result<()> {
        check_real_id(id)?;
        self.reals
            .set(id, real, 0)
            .map_err(map_err("writing a real server"))
    }

    pub fn real(&self, id: u32) -> Result<LbReal> {
        check_real_id(id)?;
        self.reals
            .get(&id, 0)
            .map_err(map_err("reading a real server"))
    }

    /// The flows the program remembers now.
    pub fn flows(&self) -> Result<Vec<(LbFlowKey, LbFlow)>> {
        self.flows
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err("listing load-balanced flows"))
    }

    pub fn flow(&self, key: &LbFlowKey) -> Option<LbFlow> {
        self.flows.get(key, 0).ok()
    }

    /// Counters of service `id`, summed over the CPUs.
    pub fn service_counters(&self, id: u32) -> Result<LbCounters> {
        check_service_id(id)?;
        sum(&self.service_stats, id, "reading a service's counters")
    }

    /// Counters of real `id`, summed over the CPUs.
    pub fn real_counters(&self, id: u32) -> Result<LbCounters> {
        check_real_id(id)?;
        sum(&self.real_stats, id, "reading a real server's counters")
    }

    /// Zeroes the counters of real `id` (its slot is given to another server).
    pub fn reset_real_counters(&mut self, id: u32) -> Result<()> {
        check_real_id(id)?;
        let cpus = aya::util::nr_cpus().map_err(|(_, source)| DataplaneError::Io {
            what: "counting possible CPUs".into(),
            source,
        })?;
        let zeros =
            PerCpuValues::try_from(vec![LbCounters::default(); cpus]).map_err(|source| {
                DataplaneError::Io {
                    what: "building zeroed counters".into(),
                    source,
                }
            })?;
        self.real_stats
            .set(id, zeros, 0)
            .map_err(map_err("resetting a real server's counters"))
    }
}

fn sum(map: &PerCpuArray<MapData, LbCounters>, id: u32, what: &str) -> Result<LbCounters> {
    let per_cpu = map.get(&id, 0).map_err(map_err(what))?;
    let mut total = LbCounters::default();
    for c in per_cpu.iter() {
        total.accumulate(c);
    }
    Ok(total)
}

fn check_service_id(id: u32) -> Result<()> {
    if id >= MAX_LB_SERVICES {
        return Err(DataplaneError::Capacity {
            what: "load-balanced services",
            max: MAX_LB_SERVICES,
        });
    }
    Ok(())
}

fn check_real_id(id: u32) -> Result<()> {
    if id >= MAX_LB_REALS {
        return Err(DataplaneError::Capacity {
            what: "real servers",
            max: MAX_LB_REALS,
        });
    }
    Ok(())
}
