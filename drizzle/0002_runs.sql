CREATE TABLE "runs" (
	"conversation_id" uuid NOT NULL,
	"id" text NOT NULL,
	"owner_id" text NOT NULL,
	"owner_type" text NOT NULL,
	"state" text NOT NULL,
	"priority" text DEFAULT 'normal' NOT NULL,
	"interruptible" boolean DEFAULT true NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ended_at" timestamp with time zone,
	"end_reason" text,
	"preempted_by" uuid,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "runs_conversation_id_id_pk" PRIMARY KEY("conversation_id","id")
);
--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "runs_active_idx" ON "runs" USING btree ("conversation_id") WHERE state = 'active';--> statement-breakpoint
CREATE INDEX "runs_conversation_started_idx" ON "runs" USING btree ("conversation_id","started_at" DESC NULLS LAST);