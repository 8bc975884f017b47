"""Fault-injection tests (`make faults`): faults injected into throwaway clusters under load."""
