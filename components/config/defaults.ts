/** The defaults, read from the schemas (they are declared there, once). */
import { z } from "zod";
import { alertingSchema } from "./alerting";
import { autoscalingSchema } from "./autoscaling";
import { destinationsSchema } from "./destinations";
import { federationSchema } from "./federation";
import { gatewaySchema } from "./gateway";
import { grafanaSchema } from "./grafana";
import { imagesSchema } from "./images";
import { schemaAt } from "./kit";
import { loadGeneratorSchema } from "./load-generator";
import { meshSchema } from "./mesh";
import { namespacesSchema } from "./namespaces";
import { prometheusSchema } from "./prometheus";
import { resourcesSchema } from "./resources";
import { structuredSchema } from "./stack";

/** Each section with every key at its default. */
export const DEFAULTS = {
    namespaces: namespacesSchema.parse(undefined),
    destinations: destinationsSchema.parse(undefined),
    images: imagesSchema.parse(undefined),
    resources: resourcesSchema.parse(undefined),
    gateway: gatewaySchema.parse(undefined),
    prometheus: prometheusSchema.parse(undefined),
    federation: federationSchema.parse(undefined),
    alerting: alertingSchema.parse(undefined),
    grafana: grafanaSchema.parse(undefined),
    loadGenerator: loadGeneratorSchema.parse(undefined),
    autoscaling: autoscalingSchema.parse(undefined),
    mesh: meshSchema.parse(undefined),
};

/** The default of a simple key (a `[section, field]` path), from the field's schema. */
export function simpleKeyDefault(path: readonly string[]): string | number | boolean {
    const field = schemaAt(structuredSchema, path);
    if (!field) throw new Error(`no config field ${path.join(".")}`);
    return z.parse(field, undefined) as string | number | boolean;
}
