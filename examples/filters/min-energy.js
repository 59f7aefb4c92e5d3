// A forwarding filter: keeps events whose metadata.energy_gev is at least config.min_gev.
export default function create(config) {
  const min = Number(config.min_gev ?? 0);
  return {
    id: 'min-energy',
    allow: (e) => typeof e.metadata.json?.energy_gev === 'number' && e.metadata.json.energy_gev >= min,
  };
}
