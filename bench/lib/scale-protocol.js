// What bench/scale.ts and its agent side (bench/scale-agent.ts) say to each other.
export {};
